"""Credentials: the provisioner's Azure identity, and what reaches one cluster's API server.

Both are secrets: they live inside an activity and never enter orchestration history or events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential

from shared.settings import Settings


class StaticTokenCredential:
    """Hands out one fixed bearer token for any scope: what the local sandbox accepts."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "StaticTokenCredential(***)"


def credential_for(settings: Settings) -> TokenCredential:
    """The sandbox token when one is set; otherwise managed identity / developer login."""
    if settings.static_token:
        return StaticTokenCredential(settings.static_token)
    from azure.identity import DefaultAzureCredential  # heavy: imported only when used

    return DefaultAzureCredential()


@dataclass(frozen=True)
class ClusterCredentials:
    """How to reach one AKS cluster's API server; `repr` hides the token."""

    server: str
    """API server URL."""
    ca_pem: bytes = field(repr=False)
    """PEM of the CA that signed the API server's certificate."""
    token: str = field(repr=False)
    """Bearer token: the user token of a local-account cluster, or an Entra token for AKS."""
