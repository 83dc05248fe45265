"""A simulated Azure on one machine: servers on 127.0.0.1 that the real SDKs talk to.

Used by the tests and the local demo; never imported by `shared/` or `functions/`.
"""
