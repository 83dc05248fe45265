"""A request's proof in Blob storage, through the real azure-storage-blob client against
Azurite, and `gpuprov proof` reading it back as a user would.

Aspects covered: the CTRF record built from the simulator's tool output is stored as
proofs/{requestId}.json (JSON content type) and read back equal; a second write replaces it
(activities run at least once); `gpuprov proof --settings` prints the table (exit 0 all passed,
1 with a failure) and `--json` the stored document; an unknown request id and settings without
a storage account are one clear line, no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from sandbox.azurite import Azurite
from sandbox.kube.gpu_stack import gpu_stack
from sandbox.kube.gpu_tools import VECTORADD_PASSED, nvidia_smi_q
from shared.proof.ctrf import ProofBuilder
from shared.proof.parsers import parse_nvidia_smi, parse_vectoradd
from shared.proof.store import ProofNotFound, ProofStore, ProofStoreError

GPUPROV = str(Path(sys.executable).parent / "gpuprov")
NODE = "aks-gpunp-12345678-vmss000000"
START = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture
def settings_file(azurite: Azurite, tmp_path: Path) -> Path:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"AzureWebJobsStorage": azurite.connection_string}}))
    return path


def proof(request_id: str, *, vectoradd_ok: bool = True) -> dict[str, Any]:
    """The record verify-gpus will write, from what the simulator's tools print."""
    stack = gpu_stack("Standard_NC4as_T4_v3")
    assert stack is not None
    smi = parse_nvidia_smi("\n".join(nvidia_smi_q(stack, 1, NODE, START.timestamp())))
    builder = ProofBuilder(request_id, START)
    builder.add(f"nvidia-smi {NODE}", "passed", 1200, node=NODE, gpuModel=smi.model,
                gpus=smi.attached, driver=smi.driver, cuda=smi.cuda)  # fmt: skip
    lines = VECTORADD_PASSED if vectoradd_ok else ["Failed to allocate device vector A (x)!"]
    result = parse_vectoradd("\n".join(lines))
    builder.add(
        f"cuda-vectoradd {NODE}",
        "passed" if result.passed else "failed",
        3400,
        None if result.passed else result.detail,
        node=NODE,
    )
    return builder.report(START + timedelta(minutes=2))


def test_the_proof_round_trips_through_blob_storage(azurite: Azurite) -> None:
    report = proof("req-roundtrip")
    with ProofStore.from_values({"AzureWebJobsStorage": azurite.connection_string}) as store:
        url = store.put("req-roundtrip", report)
        assert url.endswith("/proofs/req-roundtrip.json")
        assert store.get("req-roundtrip") == report
        failed = proof("req-roundtrip", vectoradd_ok=False)
        store.put("req-roundtrip", failed)
        assert store.get("req-roundtrip")["results"]["summary"]["failed"] == 1
        with pytest.raises(ProofNotFound, match="no proof for request 'nope'"):
            store.get("nope")
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    with service:
        blob = service.get_blob_client("proofs", "req-roundtrip.json")
        assert blob.get_blob_properties().content_settings.content_type == "application/json"


def test_gpuprov_proof_prints_the_table_and_the_json(azurite: Azurite, settings_file: Path) -> None:
    with ProofStore.from_values({"AzureWebJobsStorage": azurite.connection_string}) as store:
        store.put("req-healthy", proof("req-healthy"))
        store.put("req-broken", proof("req-broken", vectoradd_ok=False))

    table = subprocess.run(
        [GPUPROV, "proof", "req-healthy", "--settings", str(settings_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "proof of req-healthy: 2/2 passed"
    row = next(line for line in lines if line.startswith("nvidia-smi"))
    assert row.split()[2:] == ["passed", "1200", NODE, "Tesla", "T4", "1", "570.172.08", "12.8"]

    as_json = subprocess.run(
        [GPUPROV, "proof", "req-broken", "--settings", str(settings_file), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["reportFormat"] == "CTRF"
    assert report["results"]["summary"]["failed"] == 1


def test_gpuprov_proof_of_an_unknown_request_or_without_storage_says_what_to_do(
    settings_file: Path, tmp_path: Path
) -> None:
    missing = subprocess.run(
        [GPUPROV, "proof", "never-ran", "--settings", str(settings_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.startswith("gpuprov proof: no proof for request 'never-ran'")
    assert "Traceback" not in missing.stderr
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"Values": {}}))
    nothing = subprocess.run(
        [GPUPROV, "proof", "x", "--settings", str(empty)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert nothing.returncode == 1
    assert "set AzureWebJobsStorage" in nothing.stderr
    with pytest.raises(ProofStoreError, match="not a storage connection string"):
        ProofStore.from_values({"AzureWebJobsStorage": "garbage"})
