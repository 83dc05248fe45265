"""Streamed answers of one cluster's API server: watches and `logs --follow`.

Both hold the simulator's lock only while they look; between looks they wait on its condition,
so a write anywhere wakes them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from sandbox.clock import Clock
from sandbox.kit import Response
from sandbox.kube import printing, watch
from sandbox.kube.cluster import Cluster
from sandbox.kube.errors import invalid_list_options
from sandbox.kube.kinds import Kind
from sandbox.kube.objects import JSON
from sandbox.kube.watch import WatchSpec


class Streams:
    """The streams of one cluster, woken by the simulator's condition."""

    def __init__(
        self, cluster: Cluster, changed: threading.Condition, clock: Clock, live: Callable[[], bool]
    ) -> None:
        self.cluster = cluster
        self._changed = changed
        self._clock = clock
        self._live = live

    def follow_log(self, namespace: str, name: str, query: dict[str, str]) -> Response:
        """`kubectl logs -f`: the log so far, then new lines as the container prints them, until
        it stops (a daemon's log streams until the client hangs up)."""
        container = query.get("container")
        with self._changed:
            self.cluster.settle(self._clock.now())
            pod = self.cluster.get("pods", namespace, name)
            shown = len(self.cluster.pod_log(pod, container))  # 400 while it is still waiting
        tail = int(query.get("tailLines", -1))
        start = max(0, shown - tail) if tail >= 0 else 0

        def chunks() -> Iterator[bytes]:
            sent = start
            while self._live():
                with self._changed:
                    self.cluster.settle(self._clock.now())
                    pod = self.cluster.store["pods"].get((namespace, name))
                    if pod is None:
                        return
                    lines = self.cluster.pod_log(pod, container)
                    done = pod["status"].get("phase") in ("Succeeded", "Failed")
                    new, sent = lines[sent:], len(lines)
                    if not new and not done:
                        self._changed.wait(watch.WATCH_POLL_SECONDS)
                if new:
                    yield "".join(f"{line}\n" for line in new).encode()
                elif done:
                    return

        return Response(200, content_type="text/plain", stream=chunks())

    def watch(
        self,
        kind: Kind,
        query: dict[str, str],
        matches: Callable[[JSON], bool],
        view: str,
        *,
        gone: bool,
        disconnect: bool,
    ) -> Response:
        """A watch (or streaming list) of one kind, its objects as JSON or as Table rows."""

        def render(obj: JSON) -> JSON:
            if view != "table":
                return obj
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return printing.table(
                kind, [obj], self.cluster.now, meta, query.get("includeObject", "Metadata")
            )

        with self._changed:
            self.cluster.settle(self._clock.now())
            spec = watch.WatchSpec(kind.plural, matches, render)
            initial = None
            if query.get("sendInitialEvents") == "true":
                if query.get("allowWatchBookmarks") != "true" or (
                    query.get("resourceVersionMatch") != "NotOlderThan"
                ):
                    raise invalid_list_options(kind)
                initial = watch.bookmark(kind.kind, kind.api_version, self.cluster.rv)
            version = query.get("resourceVersion", "")
            backlog, cursor = watch.start(self.cluster, spec, version, gone, initial)
        seconds = float(query.get("timeoutSeconds") or watch.DEFAULT_WATCH_SECONDS)
        body = watch.stream(
            backlog, cursor, lambda c, d: self._follow(spec, c, d), spec, seconds, disconnect
        )
        return Response(200, content_type="application/json", stream=body)

    def _follow(
        self, spec: WatchSpec, cursor: int, deadline: float
    ) -> tuple[list[JSON], int] | None:
        """Wait for events after `cursor` until the deadline; None when the watch must end."""
        while self._live() and time.monotonic() < deadline:
            with self._changed:
                self.cluster.settle(self._clock.now())
                if self.cluster.compacted_rv > cursor:
                    return [watch.expired(str(cursor), self.cluster.rv)], -1
                events = watch.events_after(self.cluster, spec, cursor)
                cursor = self.cluster.rv
                if events:
                    return events, cursor
                self._changed.wait(
                    min(watch.WATCH_POLL_SECONDS, max(0.0, deadline - time.monotonic()))
                )
        return None
