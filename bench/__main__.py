"""`python -m bench` (`make bench`): run the four benchmark groups, print the table, write
bench/results.json. `--quick` runs tiny sizes (for the smoke test)."""

from bench.cli import main

raise SystemExit(main())
