"""``python -m narrowcast`` runs the same CLI as the ``narrowcast`` command."""

from narrowcast.cli import main

main()
