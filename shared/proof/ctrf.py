"""A request's proof as a CTRF report (Common Test Report Format, ctrf-io/ctrf
`schema/ctrf.schema.json`): `reportFormat: "CTRF"`, a SemVer `specVersion`, and `results` with
`tool` (name required), `summary` (tests, passed, failed, skipped, pending, other, start, stop:
counts and epoch milliseconds) and `tests[]` (name, status in passed|failed|skipped|pending|
other, duration in milliseconds; optional message and `extra` for anything else).

One test per check and node (`gpu-count aks-gpu-...-vmss000000`), its `extra` carrying what the
check found: node, GPU model, count, driver, CUDA, bandwidth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["passed", "failed", "skipped", "pending", "other"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "skipped", "pending", "other")
SPEC_VERSION = "1.0.0"
TOOL = "gpuprov"


def epoch_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


@dataclass
class ProofBuilder:
    """Collects a request's checks as CTRF tests; `report()` freezes them into the document."""

    request_id: str
    start: datetime
    tool_version: str = "1"
    tests: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        name: str,
        status: Status,
        duration_ms: int,
        message: str | None = None,
        **extra: Any,
    ) -> None:
        test: dict[str, Any] = {"name": name, "status": status, "duration": int(duration_ms)}
        if message:
            test["message"] = message
        found = {key: value for key, value in extra.items() if value is not None}
        if found:
            test["extra"] = found
        self.tests.append(test)

    def report(self, stop: datetime) -> dict[str, Any]:
        counts = {
            status: sum(1 for t in self.tests if t["status"] == status) for status in STATUSES
        }
        return {
            "reportFormat": "CTRF",
            "specVersion": SPEC_VERSION,
            "timestamp": stop.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "generatedBy": TOOL,
            "extra": {"requestId": self.request_id},
            "results": {
                "tool": {"name": TOOL, "version": self.tool_version},
                "summary": {
                    "tests": len(self.tests),
                    **counts,
                    "start": epoch_ms(self.start),
                    "stop": epoch_ms(stop),
                },
                "tests": list(self.tests),
            },
        }


def summary_text(report: dict[str, Any]) -> str:
    """One line for an event or a terminal: `5/5 passed` or `3/5 passed, 2 failed`."""
    summary = report["results"]["summary"]
    text = f"{summary['passed']}/{summary['tests']} passed"
    others = [f"{summary[s]} {s}" for s in STATUSES[1:] if summary.get(s)]
    return ", ".join([text, *others])
