"""The ``narrowcast`` command: parse arguments, call the library, print.

Every command is a thin shell over a library function that tests call
directly; user mistakes arrive as ``NarrowcastError`` (a ``ClickException``)
and are printed without a traceback. One module per command group.
"""

from narrowcast.cli import (  # noqa: F401  (they register their commands)
    campaigns,
    channels,
    db,
    demo,
    imports,
    segments,
    serve,
    worker,
)
from narrowcast.cli.app import cli


def main() -> None:
    # Standalone mode prints a NarrowcastError (a ClickException) and exits with its code.
    cli.main(standalone_mode=True)


__all__ = ["cli", "main"]
