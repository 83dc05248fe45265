"""How an event reads on a terminal (`gpuprov run`, `watch`, `demo`).

Covers: a lifecycle event says its step once (`→ accepted  from the storage queue`, not
`accepted accepted accepted …`); a step's status follows its name; an event from before the
watch began is marked `replayed` instead of timed; a run's summary names what was deleted.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from gpuprov.progress import Progress


def shown(data: dict[str, Any], **options: Any) -> str:
    out = io.StringIO()
    Progress(out, json_lines=False).show({"id": "e1", "subject": "r1", "data": data}, **options)
    return out.getvalue().strip()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"step": "accepted", "status": "accepted",
                      "message": "accepted from the storage queue"},
                     ["→", "accepted", "from", "the", "storage", "queue"], id="accepted"),
        pytest.param({"step": "completed", "status": "completed", "message": "GPUs proven"},
                     ["✓", "completed", "GPUs", "proven"], id="completed"),
        pytest.param({"step": "rejected", "status": "rejected",
                      "message": "rejected: $.location: not a string"},
                     ["✗", "rejected", "$.location:", "not", "a", "string"], id="rejected"),
        pytest.param({"step": "run-job", "status": "succeeded", "message": "job done"},
                     ["✓", "run-job", "succeeded", "job", "done"], id="step"),
    ],
)  # fmt: skip
def test_each_word_is_said_once(data: dict[str, Any], expected: list[str]) -> None:
    assert shown(data).split()[1:] == expected


def test_a_replayed_event_is_marked_not_timed() -> None:
    line = shown({"step": "accepted", "status": "accepted"}, replayed=True)
    assert line.split()[:3] == ["replayed", "→", "accepted"]


def test_the_summary_names_what_was_deleted_and_what_is_left() -> None:
    out = io.StringIO()
    details = {"deleted": ["cluster c1"], "left": ["node pool gpu"],
               "expiresAt": "2026-11-28T10:00:00+00:00"}  # fmt: skip
    Progress(out, json_lines=False).summary(details, "failed")
    text = out.getvalue()
    assert "deleted: cluster c1" in text
    assert "left running: node pool gpu until 2026-11-28T10:00:00+00:00" in text
