"""`gpuprov plan FILE --sandbox` as a user runs it: the installed command in a subprocess, against
a sandbox it starts (whose default scenario has no ND H100 v5 quota anywhere).

Covers: the seed walkthrough can run on Standard_NC4as_T4_v3 with a positive estimate (exit 0,
JSON `chosen.vmSize` and `estimate.cost`); Standard_ND96isr_H100_v5 alone cannot (exit 2) and the
error names the quota (family, location, limit, used, needed) and the quota request page; with
Standard_NC24ads_A100_v4 as the alternative it picks the A100 and `gpuprov run` creates that pool
at the first attempt; a budget under the estimate exits 2 with both numbers; invalid input exits
2 with JSON errors; `--settings` with a missing file exits 1 naming it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import seed_document
from tests.conftest import EXAMPLES, GPUPROV

SEED = next(p for p in EXAMPLES if p.stem == "seed-walkthrough")
FALLBACK = next(p for p in EXAMPLES if p.stem == "h100-with-a100-fallback")
POOL_STEP = "create-node-pool"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    where = str(tmp_path_factory.mktemp("plan") / "sandbox")
    try:
        yield where
    finally:
        subprocess.run([GPUPROV, "sandbox", "down", "--state-dir", where], check=True, timeout=60)


def gpuprov(*args: str, state: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GPUPROV, *args, "--sandbox", "--state-dir", state],
        capture_output=True, text=True, check=False, timeout=240,
    )  # fmt: skip


def written(tmp_path: Path, document: dict[str, object]) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_the_seed_walkthrough_can_run_on_the_t4_with_a_positive_estimate(state: str) -> None:
    result = gpuprov("plan", str(SEED), "--json", state=state)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["canRun"] is True
    assert plan["chosen"]["vmSize"] == "Standard_NC4as_T4_v3"
    assert plan["estimate"]["cost"] > 0
    human = gpuprov("plan", str(SEED), state=state)
    assert human.returncode == 0
    assert "can run; chosen: Standard_NC4as_T4_v3" in human.stdout


def test_the_h100_alone_cannot_run_and_the_error_names_the_quota(
    state: str, tmp_path: Path
) -> None:
    request = written(tmp_path, seed_document(nodePool={"vmSize": "Standard_ND96isr_H100_v5"}))
    result = gpuprov("plan", request, state=state)
    assert result.returncode == 2, result.stderr
    assert "cannot run" in result.stderr
    assert "needs 96 vCPUs of standardNDSH100v5Family in eastus: limit 0, used 0" in result.stderr
    assert "https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/" in result.stderr
    assert "%22resourceName%22:%22standardNDSH100v5Family%22" in result.stderr
    assert "%22location%22:%22eastus%22" in result.stderr
    assert "Traceback" not in result.stderr


def test_with_the_a100_alternative_it_picks_the_a100_and_the_run_creates_it_at_once(
    state: str,
) -> None:
    result = gpuprov("plan", str(FALLBACK), "--json", state=state)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["chosen"]["vmSize"] == "Standard_NC24ads_A100_v4"
    assert [c["fits"] for c in plan["candidates"]] == [False, True]
    run = gpuprov("run", str(FALLBACK), "--json", "--time-scale", "120", state=state)
    assert run.returncode == 0, run.stderr[-3000:]
    events = [json.loads(line)["data"] for line in run.stdout.splitlines()]
    pool = [(e["status"], e.get("details") or {}) for e in events if e["step"] == POOL_STEP]
    assert [status for status, _ in pool] == ["started", "succeeded"], "no failed attempt"
    assert pool[-1][1]["vmSize"] == "Standard_NC24ads_A100_v4"
    assert pool[-1][1]["fellBackFrom"] == []
    cost = events[-1]["details"]["cost"]
    assert cost["estimate"] == plan["estimate"]["cost"]
    assert cost["actual"] > 0


def test_a_budget_under_the_estimate_cannot_run(state: str, tmp_path: Path) -> None:
    request = written(tmp_path, seed_document(budget={"maxCost": 0.05, "currency": "USD"}))
    result = gpuprov("plan", request, state=state)
    assert result.returncode == 2
    assert "The estimate 0.39 USD" in result.stderr
    assert "over the budget of 0.05 USD (request)" in result.stderr


def test_invalid_input_and_missing_settings(tmp_path: Path) -> None:
    bad = written(tmp_path, seed_document(budget={"maxCost": -1}))
    result = subprocess.run(
        [GPUPROV, "plan", bad, "--settings", str(tmp_path / "nope.json")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "nope.json does not exist" in result.stderr
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": {}}))
    result = subprocess.run(
        [GPUPROV, "plan", bad, "--settings", str(settings)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert [e["path"] for e in json.loads(result.stdout)] == ["$.budget.maxCost"]
