"""`python -m gpuprov` is the `gpuprov` command."""

from gpuprov.cli import main

raise SystemExit(main())
