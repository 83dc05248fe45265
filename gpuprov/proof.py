"""`gpuprov proof REQUEST_ID`: print a request's stored proof (CTRF) as a table or JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

from shared.proof.ctrf import summary_text
from shared.proof.store import ProofStore

_SHOWN = ("node", "gpuModel", "gpus", "driver", "cuda", "busbwGBps")


def show(values: Mapping[str, str], request_id: str, out: TextIO, json_output: bool) -> int:
    """Print the proof; exit 0 when every test passed, 1 otherwise (ProofStoreError raises)."""
    with ProofStore.from_values(values) as store:
        report = store.get(request_id)
    if json_output:
        print(json.dumps(report, indent=2), file=out)
    else:
        print_table(report, request_id, out)
    summary = report["results"]["summary"]
    return 0 if summary["failed"] == 0 and summary["tests"] > 0 else 1


def print_table(report: dict[str, Any], request_id: str, out: TextIO) -> None:
    tests = report["results"]["tests"]
    rows = [["TEST", "STATUS", "MS", "NODE", "GPU", "COUNT", "DRIVER", "CUDA", "GB/S"]]
    for test in tests:
        extra = test.get("extra") or {}
        rows.append(
            [test["name"], test["status"], str(test["duration"])]
            + [str(extra.get(key, "")) for key in _SHOWN]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"proof of {request_id}: {summary_text(report)}", file=out)
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip(), file=out)
    for test in tests:
        if test["status"] == "failed" and test.get("message"):
            print(f"{test['name']}: {test['message']}", file=out)
