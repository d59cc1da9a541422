"""``python -m monitor``: the ``driftwarden`` command line."""

from monitor.cli.main import main

main()
