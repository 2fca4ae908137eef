"""``python -m narrowcast`` runs the same CLI as the ``narrowcast`` command."""

from narrowcast.cli import main

if __name__ == "__main__":  # the demo's worker processes import this module too
    main()
