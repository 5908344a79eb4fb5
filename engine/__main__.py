"""Allow ``python -m engine`` as another name for the ``opsgate`` command."""

from engine.cli import main

main()
