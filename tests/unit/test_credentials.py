"""Credentials: the sandbox token only when configured, and secrets that never print.

Covers: `credential_for` picks the static token only when GPUPROV_STATIC_TOKEN is set (else
DefaultAzureCredential); neither the static credential nor ClusterCredentials shows its secret in
`repr` (which is what logs and tracebacks print); cluster credentials cached per worker for a TTL
and forgotten after a failure.
"""

from __future__ import annotations

from azure.identity import DefaultAzureCredential

from shared.credentials import (
    ClusterCredentials,
    CredentialCache,
    StaticTokenCredential,
    credential_for,
)
from shared.settings import Settings


def test_static_token_only_when_configured() -> None:
    static = credential_for(Settings.from_env({"GPUPROV_STATIC_TOKEN": "sandbox-token"}))
    assert isinstance(static, StaticTokenCredential)
    assert static.get_token("https://management.azure.com/.default").token == "sandbox-token"
    assert isinstance(credential_for(Settings.from_env({})), DefaultAzureCredential)


def test_secrets_do_not_print() -> None:
    credentials = ClusterCredentials(
        server="https://127.0.0.1:6443", ca_pem=b"-----BEGIN CERTIFICATE-----", token="s3cr3t"
    )
    settings = Settings.from_env({"GPUPROV_STATIC_TOKEN": "s3cr3t"})
    for value in (credentials, StaticTokenCredential("s3cr3t"), settings):
        assert "s3cr3t" not in repr(value)
        assert "BEGIN CERTIFICATE" not in repr(value)
    assert "127.0.0.1:6443" in repr(credentials)


def test_cluster_credentials_are_fetched_once_per_ttl_and_forgotten_on_failure() -> None:
    now = [0.0]
    cache = CredentialCache(ttl=300, clock=lambda: now[0])
    fetched: list[str] = []

    def fetch() -> ClusterCredentials:
        fetched.append("x")
        return ClusterCredentials(server=f"https://k{len(fetched)}", ca_pem=b"", token="secret")

    key = ("arm", "sub", "rg", "cluster")
    assert cache.get(key, fetch).server == "https://k1"
    now[0] = 299
    assert cache.get(key, fetch).server == "https://k1"
    now[0] = 300
    assert cache.get(key, fetch).server == "https://k2"  # expired: fetched again
    cache.forget(key)
    assert cache.get(key, fetch).server == "https://k3"  # forgotten after a failure
    assert cache.get(("arm", "sub", "rg", "other"), fetch).server == "https://k4"
    assert "secret" not in repr(cache)
