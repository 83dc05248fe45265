"""Group 3: cold start — importing the app and indexing its functions in a fresh interpreter.

What the Python worker does before the first invocation: import `function_app` and call
`app.get_functions()`. The baseline is a bare `df.DFApp()` with no functions (the imports any
Durable Functions app pays). Runs alternate between the two so drift hits both alike.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.stack import ROOT

_PROBE = """
import json, time
began = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - began, "functions": len(functions)}}))
"""
APP = "import function_app\nfunctions = function_app.app.get_functions()"
BARE = "import azure.durable_functions as df\nfunctions = df.DFApp().get_functions()"


def probe(body: str) -> dict[str, float]:
    """One fresh interpreter: seconds inside it, and the whole process's wall time."""
    began = time.perf_counter()
    finished = subprocess.run(  # noqa: S603 - this interpreter, our own probe
        [sys.executable, "-c", _PROBE.format(body=body)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    wall = time.perf_counter() - began
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    return {"seconds": result["seconds"], "process_seconds": wall, "functions": result["functions"]}


def import_profile() -> dict[str, float]:
    """Milliseconds (cumulative) of each import `function_app` makes itself, largest first
    (those over 1 ms): where a cold start's time goes."""
    finished = subprocess.run(  # noqa: S603 - this interpreter, our own probe
        [sys.executable, "-X", "importtime", "-c", APP],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    direct: dict[str, float] = {}
    for line in finished.stderr.splitlines():
        _, _, rest = line.partition(":")
        fields = rest.split("|")
        name = fields[-1] if len(fields) == 3 else ""
        if name.startswith("   ") and not name.startswith("    "):  # imported by function_app
            direct[name.strip()] = int(fields[1]) / 1000.0
    largest = sorted(direct.items(), key=lambda item: -item[1])
    return {name: ms for name, ms in largest if ms >= 1.0}


def measure(runs: int = 7) -> dict[str, Any]:
    app: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    probe(APP)  # warm the disk cache and .pyc files for both, untimed
    probe(BARE)
    for _ in range(runs):
        app.append(probe(APP))
        bare.append(probe(BARE))
    app_median = statistics.median(r["seconds"] for r in app)
    bare_median = statistics.median(r["seconds"] for r in bare)
    return {
        "value": app_median,
        "baseline": bare_median,
        "ratio": app_median / bare_median,
        "goal": "< 1.5",
        "unit": "s",
        "runs": runs,
        "functions_indexed": int(app[0]["functions"]),
        "app_seconds": [r["seconds"] for r in app],
        "bare_seconds": [r["seconds"] for r in bare],
        "function_app_imports_ms": import_profile(),
        "process_median": {
            "app": statistics.median(r["process_seconds"] for r in app),
            "bare": statistics.median(r["process_seconds"] for r in bare),
        },
    }
