"""Credentials: the sandbox token only when configured, and secrets that never print.

Covers: `credential_for` picks the static token only when GPUPROV_STATIC_TOKEN is set (else
DefaultAzureCredential); neither the static credential nor ClusterCredentials shows its secret in
`repr` (which is what logs and tracebacks print).
"""

from __future__ import annotations

from azure.identity import DefaultAzureCredential

from shared.credentials import ClusterCredentials, StaticTokenCredential, credential_for
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
