"""What a simulator received, oldest first, for tests and benchmarks that count calls."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int
    """The status code answered (for a streamed answer, the status it started with)."""

    @property
    def watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")


class RequestRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []

    def record(self, method: str, path: str, query: dict[str, str], status: int) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, dict(query), status))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
