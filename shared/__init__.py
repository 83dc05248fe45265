"""The provisioner's library: request contract, settings, policy, adapters; no Functions runtime."""
