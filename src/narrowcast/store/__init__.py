"""The customer store: tables, engine and migrations."""

from narrowcast.store.engine import Store, head_revision
from narrowcast.store.errors import StoreError, StoreNotReady

__all__ = ["Store", "StoreError", "StoreNotReady", "head_revision"]
