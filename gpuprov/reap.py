"""`gpuprov reap [--dry-run] (--sandbox | --settings FILE) [--json]`: the reaper, now.

Runs the same reaper as the timer, from this machine: it scans the subscriptions of the
settings (and, in the sandbox, the ones the sandbox serves, or any given with --subscription),
on the sandbox's simulated clock there. No Durable host is asked here, so a resource goes only
once its `gpuprov-expires-at` has passed; orphans of finished or unknown runs are left to the
timer, which can tell them apart from running ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from shared.reaper import UNCHECKED, ReapReport, RequestState, reap
from shared.settings import Settings


def run_reaper(
    values: Mapping[str, str],
    *,
    dry_run: bool,
    now: datetime | None,
    subscriptions: Iterable[str],
    out: TextIO,
    json_output: bool,
) -> int:
    """0 when the run had no error (its scope not empty), 1 otherwise."""
    settings = Settings.from_env(values)
    if dry_run:
        settings = settings.model_copy(update={"reaper_dry_run": True})

    def unchecked(request_id: str) -> RequestState:
        return UNCHECKED

    report = reap(
        settings, unchecked, now or datetime.now(UTC), publish=None, recorded=subscriptions
    )
    if json_output:
        print(report.model_dump_json(by_alias=True, indent=2), file=out)
    else:
        print_table(report, out)
    return 1 if report.errors else 0


def print_table(report: ReapReport, out: TextIO) -> None:
    """What was (or would be) deleted, what was left and why, and what failed."""
    verb = "would delete" if report.dry_run else "deleting"
    rows: list[tuple[str, str, str, str]] = [
        (verb, d.resource_id, d.request_id, d.reason) for d in report.deletions
    ]
    rows += [("left", s.resource_id, "", s.reason) for s in report.skipped]
    rows += [("error", e.target, "", f"{e.code}: {e.message}") for e in report.errors]
    scope = ", ".join(report.subscriptions) or "no subscription"
    print(f"reaper at {report.at.isoformat()} (owner's resources in {scope})", file=out)
    if rows:
        names = [_short(resource) for _, resource, _, _ in rows]
        width = max(len(name) for name in names)
        print(f"{'ACTION':<13} {'RESOURCE':<{width}}  {'REQUEST':<20} WHY", file=out)
        for (action, _, request, why), name in zip(rows, names, strict=True):
            print(f"{action:<13} {name:<{width}}  {request or '-':<20} {why}", file=out)
    print(f"{report.clusters_scanned} cluster(s) scanned; {len(report.deletions)} {verb}, "
          f"{len(report.skipped)} left, {len(report.errors)} error(s)", file=out)  # fmt: skip


def _short(resource_id: str) -> str:
    """`group/cluster[/pool]` from an ARM id; anything else as it is."""
    parts = resource_id.split("/")
    if "resourceGroups" not in parts or "managedClusters" not in parts:
        return resource_id
    group = parts[parts.index("resourceGroups") + 1]
    rest = parts[parts.index("managedClusters") + 1 :]
    return "/".join([group, rest[0], *rest[2:3]])


def sandbox_subscriptions() -> list[str]:
    """The subscriptions the sandbox's ARM serves: those the examples' requests target (it
    creates their resource groups at start, sandbox/serve.py)."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    return sorted({json.loads(p.read_text())["subscriptionId"] for p in examples.glob("*.json")})
