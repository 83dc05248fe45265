"""The `gpuprov` command line: validate requests, run them, drive the local sandbox."""
