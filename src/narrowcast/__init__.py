"""narrowcast: campaign automation for micro-segmentation marketing."""

from narrowcast.config import Settings, load_settings
from narrowcast.errors import NarrowcastError

__all__ = ["NarrowcastError", "Settings", "load_settings"]
__version__ = "0.1.0"
