"""Watches: the events after a resourceVersion, as seen through a watch's selectors.

Each event goes out as one JSON line of a chunked response (or, for `kubectl get --watch`, with
the object printed as a one-row Table). Compacted history answers an ERROR event with 410.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sandbox.kube.cluster import Cluster
from sandbox.kube.objects import JSON
from sandbox.kube.store import WatchEvent

WATCH_POLL_SECONDS = 0.05
DEFAULT_WATCH_SECONDS = 1800.0


@dataclass
class WatchSpec:
    resource: str
    matches: Callable[[JSON], bool]
    render: Callable[[JSON], JSON]
    """How an event's object is sent (itself, or a Table row)."""
    bookmarks: bool = False


def history_after(history: list[WatchEvent], version: int) -> list[WatchEvent]:
    low, high = 0, len(history)
    while low < high:
        middle = (low + high) // 2
        if history[middle].rv <= version:
            low = middle + 1
        else:
            high = middle
    return history[low:]


def expired(version: str, current: int) -> JSON:
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {version} ({current})",
            "reason": "Expired",
            "code": 410,
        },
    }


def translate(spec: WatchSpec, event: WatchEvent) -> JSON | None:
    """An event through the watch's selectors (leaving the selection is DELETED)."""
    now = spec.matches(event.obj)
    before = (
        event.previous is not None and event.type == "MODIFIED" and spec.matches(event.previous)
    )
    if event.type == "MODIFIED" and now != before:
        kind = "ADDED" if now else "DELETED"
    elif now:
        kind = event.type
    else:
        return None
    return {"type": kind, "object": event.obj}


def events_after(cluster: Cluster, spec: WatchSpec, version: int) -> list[JSON]:
    found = []
    for event in history_after(cluster.history, version):
        if event.resource == spec.resource:
            translated = translate(spec, event)
            if translated is not None:
                found.append(translated)
    return found


def bookmark(kind: str, api_version: str, version: int) -> JSON:
    """The BOOKMARK that ends a streaming list's initial events (KEP-3157 WatchList)."""
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {
                "resourceVersion": str(version),
                "annotations": {"k8s.io/initial-events-end": "true"},
            },
        },
    }


def start(
    cluster: Cluster, spec: WatchSpec, version: str, gone: bool, initial: JSON | None = None
) -> tuple[list[JSON], int]:
    """Events to send first and the resourceVersion the live part continues from (-1: none).

    `initial` (a bookmark) asks for a streaming list: every current object, then the bookmark,
    as client-go's WatchListClient asks with sendInitialEvents=true.
    """
    if gone:
        return [expired(version or "0", cluster.rv)], -1
    if initial is not None:
        added = [
            {"type": "ADDED", "object": obj}
            for obj in cluster.items(spec.resource)
            if spec.matches(obj)
        ]
        return [*added, initial], cluster.rv
    if version and version != "0":
        begin = int(version)
        if begin < cluster.compacted_rv:
            return [expired(version, cluster.rv)], -1
        return events_after(cluster, spec, begin), cluster.rv
    added = [
        {"type": "ADDED", "object": obj}
        for obj in cluster.items(spec.resource)
        if spec.matches(obj)
    ]
    return added, cluster.rv


def stream(
    backlog: list[JSON],
    cursor: int,
    follow: Callable[[int, float], tuple[list[JSON], int] | None],
    spec: WatchSpec,
    seconds: float,
    disconnect: bool,
) -> Iterator[bytes]:
    """The watch's body: the backlog, then what `follow(cursor, deadline)` finds, until timeout."""
    deadline = time.monotonic() + seconds
    batch: list[JSON] | None = backlog
    while batch is not None:
        for event in batch:
            if event["type"] not in ("ERROR", "BOOKMARK"):
                event = {"type": event["type"], "object": spec.render(event["object"])}
            yield json.dumps(event).encode() + b"\n"
            if disconnect:
                return
        if cursor < 0 or time.monotonic() >= deadline:
            return
        found = follow(cursor, deadline)
        if found is None:
            return
        batch, cursor = found
