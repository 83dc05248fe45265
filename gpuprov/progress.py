"""How a run's events are shown on a terminal: one line per step outcome, then a summary.

`gpuprov run` feeds it outcomes from the orchestration's history, `gpuprov watch` from the events
topic; both show the same lines, so what a user sees does not depend on where it was read.
"""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

_MARKS = {"started": "…", "succeeded": "✓", "skipped": "–", "failed": "✗",
          "completed": "✓", "accepted": "→", "rejected": "✗", "reaped": "♻"}  # fmt: skip
FINAL_STEPS = frozenset({"completed", "failed", "rejected"})
"""The steps after which a request has nothing more to say."""


class Progress:
    """Prints each event once (a retried publish repeats an id), as a line or as JSON."""

    def __init__(self, out: TextIO, *, json_lines: bool, show_request: bool = False) -> None:
        self.out = out
        self.json_lines = json_lines
        self.show_request = show_request
        self.began = time.monotonic()
        self._seen: set[str] = set()

    def show(self, event: dict[str, Any], *, replayed: bool = False, note: str = "") -> bool:
        """Show one structured CloudEvent; False when its id was shown already. A `replayed`
        event was published before this watch began: it is marked so, not timed."""
        if event["id"] in self._seen:
            return False
        self._seen.add(event["id"])
        if self.json_lines:
            print(json.dumps(event), file=self.out, flush=True)
            return True
        data: dict[str, Any] = event.get("data") or {}
        step, status = str(data.get("step")), str(data.get("status"))
        mark = _MARKS.get(status, "·")
        who = f"{event.get('subject')}  " if self.show_request else ""
        when = "replayed" if replayed else f"{time.monotonic() - self.began:6.1f}s"
        line = f"{when:>8}  {who}{mark} {step:<22}"
        message = str(data.get("message") or "")
        if status == step:  # a lifecycle event: its status is its step's name, said once
            message = message.removeprefix(f"{step}: ").removeprefix(f"{step} ")
        else:
            line += f" {status}"
        if message:
            line += f"  {message}"
        error = data.get("error")
        if isinstance(error, dict):
            line += f" [{error.get('code')}] {error.get('hint') or ''}".rstrip()
        if note:
            line += f"  {note}"
        print(line.rstrip(), file=self.out, flush=True)
        return True

    def summary(self, details: dict[str, Any], outcome: str, error: str | None = None) -> None:
        """The run's summary: step durations, the job's result, what stays and until when."""
        if self.json_lines:
            return
        out = self.out
        if not details:
            print(f"\nthe run stopped: {error or outcome}", file=out)
            return
        print("\nsteps (seconds on the run's clock: simulated in the sandbox)", file=out)
        for step, seconds in (details.get("durations") or {}).items():
            print(f"  {step:<22} {seconds:8.0f} s", file=out)
        result = details.get("jobResult")
        if result:
            gpu = f" on {result['gpu']}" if result.get("gpu") else ""
            print(f"  job: accuracy {result['accuracy']} at step {result['step']}{gpu}", file=out)
        cost = details.get("cost")
        if cost:
            estimate = "n/a" if cost.get("estimate") is None else f"{cost['estimate']:.2f}"
            actual = "n/a" if cost.get("actual") is None else f"{cost['actual']:.2f}"
            more = " (the pool still runs: more accrues)" if cost.get("stillRunning") else ""
            print(f"  cost: estimated {estimate} {cost['currency']}, actual {actual} "
                  f"{cost['currency']} (GPU node time x list price){more}", file=out)  # fmt: skip
        proof = details.get("proof")
        if proof:
            request_id = str(proof.get("url") or "").rsplit("/", 1)[-1].removesuffix(".json")
            print(f"  GPU proof: {proof['summary']} (gpuprov proof {request_id})", file=out)
        if details.get("deleted"):
            print(f"  deleted: {', '.join(details['deleted'])}", file=out)
        if details.get("left"):
            print(f"  left running: {', '.join(details['left'])} until {details['expiresAt']}",
                  file=out)  # fmt: skip
        else:
            print("  left running: nothing", file=out)
        print(f"  outcome: {outcome}", file=out, flush=True)
