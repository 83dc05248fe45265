"""Credentials: the provisioner's Azure identity, and what reaches one cluster's API server.

Both are secrets: they live inside an activity and never enter orchestration history or events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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


class CredentialCache:
    """A worker's recently fetched cluster credentials, in memory only, for `ttl` seconds.

    Every Kubernetes activity needs them, and fetching costs two ARM calls (the cluster, then
    listClusterUserCredential); a run makes dozens of such activities within minutes. Whoever
    fails with cached credentials forgets them, so the retry fetches fresh ones (a cluster
    recreated under the same name, a rotated certificate).
    """

    def __init__(self, ttl: float = 300.0, clock: Any = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], tuple[float, ClusterCredentials]] = {}

    def get(
        self, key: tuple[str, ...], fetch: Callable[[], ClusterCredentials]
    ) -> ClusterCredentials:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self._ttl:
                return entry[1]
        fetched = fetch()
        with self._lock:
            self._entries[key] = (now, fetched)
        return fetched

    def forget(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __repr__(self) -> str:
        return f"CredentialCache({len(self._entries)} clusters)"


cluster_credentials = CredentialCache()
"""This worker process's cache (activities share it)."""
