"""`gpuprov sandbox fault` and `gpuprov proof --sandbox` against a running sandbox, with the
real azure-mgmt-containerservice client seeing the ARM fault it armed.

Aspects covered: --list works without a sandbox; a GPU fault is armed (exit 0, what to
expect); an ARM drill makes the next agent pool PUT answer 429 TooManyRequests to the real
SDK; an unknown fault name lists the real ones (exit 1); `gpuprov proof --sandbox` reads the
sandbox's Azurite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerservice import ContainerServiceClient

from shared.credentials import StaticTokenCredential
from shared.proof.ctrf import ProofBuilder
from shared.proof.store import ProofStore

GPUPROV = str(Path(sys.executable).parent / "gpuprov")
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def gpuprov(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GPUPROV, *args], capture_output=True, text=True, timeout=180, check=False
    )


def test_fault_list_needs_no_sandbox(tmp_path: Path) -> None:
    listed = gpuprov("sandbox", "fault", "--list", "--state-dir", str(tmp_path))
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines() if not line.startswith(" ")]
    assert {"gpu-missing", "plugin-crashloop", "xid-error", "smoke-fails", "arm-throttling",
            "quota", "allocation-failure", "arm-5xx", "kube-5xx"} == set(names)  # fmt: skip
    unknown = gpuprov("sandbox", "fault", "gpu-on-fire", "--state-dir", str(tmp_path))
    assert unknown.returncode == 1
    assert "no fault 'gpu-on-fire'" in unknown.stderr
    assert "gpu-missing" in unknown.stderr


@pytest.mark.timeout(300)
def test_faults_and_proofs_on_a_running_sandbox(tmp_path: Path) -> None:
    state_dir = tmp_path / "sandbox"
    where = ("--state-dir", str(state_dir))
    try:
        assert gpuprov("sandbox", "up", *where).returncode == 0
        armed = gpuprov("sandbox", "fault", "xid-error", *where)
        assert armed.returncode == 0, armed.stderr
        assert armed.stdout.startswith("injected xid-error: NPD sets XIDErrors")

        throttled = gpuprov("sandbox", "fault", "arm-throttling", *where)
        assert throttled.returncode == 0, throttled.stderr
        settings = json.loads((state_dir / "local.settings.json").read_text())["Values"]
        aks = ContainerServiceClient(
            StaticTokenCredential(settings["GPUPROV_STATIC_TOKEN"]),
            SUBSCRIPTION,
            base_url=settings["GPUPROV_ARM_ENDPOINT"],
            connection_verify=settings["GPUPROV_CA_BUNDLE"],
            retry_total=0,
        )
        with aks, pytest.raises(HttpResponseError) as refused:
            aks.agent_pools.begin_create_or_update(
                "platform-rg", "platform-aks", "gpunp",
                {"properties": {"vmSize": "Standard_NC4as_T4_v3", "count": 1}},
            )  # fmt: skip
        assert refused.value.status_code == 429
        assert refused.value.error is not None
        assert refused.value.error.code == "TooManyRequests"

        with ProofStore.from_values(settings) as store:
            builder = ProofBuilder("req-sandbox", datetime(2026, 11, 28, tzinfo=UTC))
            builder.add("gpu-count node-a", "passed", 3, node="node-a", gpus=1)
            store.put("req-sandbox", builder.report(datetime(2026, 11, 28, 0, 1, tzinfo=UTC)))
        shown = gpuprov("proof", "req-sandbox", "--sandbox", *where)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[0] == "proof of req-sandbox: 1/1 passed"
    finally:
        gpuprov("sandbox", "down", *where)
    gone = gpuprov("sandbox", "fault", "xid-error", *where)
    assert gone.returncode == 1
    assert "not running" in gone.stderr
