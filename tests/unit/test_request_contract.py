"""The request contract: what a valid request becomes.

Covers: the seed's defaults on today's AKS, camelCase on the wire, generated request ids that are
valid Durable instance ids and label values, normalisation (location, VM size spelling, cleanup
of new vs existing clusters, the managed-GPU preview feature), the committed JSON Schema, and that
every example validates.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.request import json_schema
from shared.settings import Settings
from shared.validation import parse_request
from tests.builders import MINIMAL, parse
from tests.conftest import EXAMPLES, ROOT


def test_defaults_follow_the_seed_on_todays_aks(settings: Settings) -> None:
    request = parse(MINIMAL, settings)
    wire = request.model_dump(mode="json")
    assert wire["nodePool"]["vmSize"] == "Standard_NC4as_T4_v3"
    assert wire["nodePool"]["taints"] == ["sku=gpu:NoSchedule"]
    assert wire["nodePool"]["gpuDriver"] == "Install"
    assert wire["devicePlugin"] == {
        "install": "auto",
        "image": "nvcr.io/nvidia/k8s-device-plugin:v0.18.0",
        "namespace": "gpu-resources",
    }
    assert wire["job"]["image"] == "mcr.microsoft.com/azuredocs/samples-tf-mnist-demo:gpu"
    assert wire["job"]["args"] == ["--max_steps", "500"]
    assert wire["job"]["gpusPerPod"] == 1
    assert wire["cleanup"]["deleteCluster"] is True, "a new cluster is deleted by default"


def test_generated_request_id_is_a_valid_instance_id_and_label_value(settings: Settings) -> None:
    first, second = parse(MINIMAL, settings), parse(MINIMAL, settings)
    assert first.request_id != second.request_id
    label_value = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
    assert label_value.fullmatch(first.request_id)
    assert not set(first.request_id) & set("/\\#?")


def test_given_request_id_is_kept(settings: Settings) -> None:
    assert parse({**MINIMAL, "requestId": "run-42"}, settings).request_id == "run-42"


def test_wire_is_camel_case_and_round_trips(settings: Settings) -> None:
    request = parse(MINIMAL, settings)
    wire = json.loads(request.model_dump_json())
    assert "nodePool" in wire
    assert "node_pool" not in wire
    assert parse(wire, settings) == request


@pytest.mark.parametrize(
    ("field", "given", "normalised"),
    [
        pytest.param(("location",), "East US", "eastus", id="location-display-name"),
        pytest.param(("nodePool", "vmSize"), "standard_nc4as_t4_v3", "Standard_NC4as_T4_v3",
                     id="vm-size-spelling"),
        pytest.param(("subscriptionId",), "ABCDEF00-0000-0000-0000-000000000000",
                     "abcdef00-0000-0000-0000-000000000000", id="subscription-lowercase"),
    ],
)  # fmt: skip
def test_normalisation(
    settings: Settings, field: tuple[str, ...], given: str, normalised: str
) -> None:
    document = json.loads(json.dumps(MINIMAL))
    target = document
    for key in field[:-1]:
        target = target.setdefault(key, {})
    target[field[-1]] = given
    value: Any = parse(document, settings).model_dump(mode="json")
    for key in field:
        value = value[key]
    assert value == normalised


def test_existing_cluster_is_never_deleted_by_default(settings: Settings) -> None:
    document = {**MINIMAL, "target": {"kind": "existingCluster", "clusterName": "shared-aks"}}
    cleanup = parse(document, settings).cleanup
    assert cleanup.delete_cluster is False
    assert cleanup.delete_node_pool is True


def test_managed_gpu_brings_its_preview_feature_once(settings: Settings) -> None:
    document = {**MINIMAL, "nodePool": {"managedGpu": True}}
    features = parse(document, settings).preview_features
    assert [(f.namespace, f.name) for f in features] == [
        ("Microsoft.ContainerService", "ManagedGPUExperiencePreview")
    ]
    listed = {
        **document,
        "previewFeatures": [{"name": "ManagedGPUExperiencePreview"}],
    }
    assert len(parse(listed, settings).preview_features) == 1


def test_committed_schema_matches_the_model() -> None:
    committed = json.loads((ROOT / "schemas" / "provision-request.schema.json").read_text())
    assert committed == json_schema(), "run `make schema` and commit the result"


def test_schema_rejects_unknown_fields_and_names_required_ones() -> None:
    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {
        "apiVersion", "subscriptionId", "resourceGroup", "location", "target",
    }  # fmt: skip
    pool_name = schema["$defs"]["NodePool"]["properties"]["name"]
    assert re.fullmatch(pool_name["pattern"].strip("^$"), "gpunp")
    assert not re.fullmatch(pool_name["pattern"].strip("^$"), "GPU-pool")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_validates(settings: Settings, path: Path) -> None:
    request = parse_request(path.read_bytes(), settings)
    assert request.request_id == json.loads(path.read_text())["requestId"]


def test_examples_cover_the_three_journeys(settings: Settings) -> None:
    requests = {p.stem: parse_request(p.read_bytes(), settings) for p in EXAMPLES}
    seed = requests["seed-walkthrough"]
    assert seed.creates_cluster
    assert seed.cleanup.delete_cluster
    pool = requests["existing-cluster-gpu-pool"]
    assert not pool.creates_cluster
    assert pool.cleanup.delete_node_pool
    assert not pool.cleanup.delete_cluster
    spot = requests["spot-pool-with-fallback"]
    assert spot.node_pool.spot is not None
    assert spot.node_pool.alternative_vm_sizes
    assert spot.preview_features
