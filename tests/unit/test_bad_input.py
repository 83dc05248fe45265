"""Bad input: every class of wrong request ends in errors that say where and how to fix it.

Covers, one table row per case: unreadable documents (not UTF-8, empty, huge, malformed JSON,
duplicate keys, NaN, deep nesting, not an object), contract errors (missing and unknown fields,
wrong JSON types, bad apiVersion, target kind), Azure and Kubernetes naming rules, and policy
(allow-lists, retired sizes and mechanisms, limits, cross-field consistency).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.problems import InvalidRequest, Problem
from shared.settings import Settings
from shared.validation import MAX_REQUEST_BYTES, parse_request
from tests.builders import MINIMAL


def with_(**changes: Any) -> bytes:
    """MINIMAL with top-level fields replaced (None removes one), as JSON bytes."""
    document = {**MINIMAL, **changes}
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def problems_of(raw: bytes, settings: Settings) -> list[Problem]:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(raw, settings)
    return caught.value.problems


def assert_problem(problems: list[Problem], path: str, *fragments: str) -> None:
    matching = [p for p in problems if p.path == path]
    assert matching, f"no error at {path}; got {[(p.path, p.message) for p in problems]}"
    message = " ".join(p.message for p in matching)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


DOCUMENT_CASES = [
    pytest.param(b"\xff\xfe{}", "$", ["not UTF-8", "offset 0"], id="not-utf8"),
    pytest.param(b"", "$", ["empty", "apiVersion"], id="empty"),
    pytest.param(b"  \n\t", "$", ["empty"], id="whitespace-only"),
    pytest.param(b" " * (MAX_REQUEST_BYTES + 1), "$", ["bytes", "64 KiB"], id="huge"),
    pytest.param(b'{"apiVersion": "gpuprov/v1",', "$", ["not valid JSON", "line 1"],
                 id="truncated"),
    pytest.param(b"{'single': 'quotes'}", "$", ["not valid JSON", "column 2"], id="single-quotes"),
    pytest.param(b'{"location": "a", "location": "b"}', "$", ["'location' appears twice"],
                 id="duplicate-key"),
    pytest.param(b'{"job": {"gpusPerPod": NaN}}', "$", ["NaN is not a JSON number"], id="nan"),
    pytest.param(b"[" * 30000 + b"]" * 30000, "$", ["nested too deeply"], id="deep-nesting"),
    pytest.param(b"[1, 2]", "$", ["expected a JSON object, got an array"], id="array"),
    pytest.param(b'"text"', "$", ["expected a JSON object, got a string"], id="string"),
    pytest.param("\ufeff".encode() + with_(), None, [], id="utf8-bom-is-fine"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "path", "fragments"), DOCUMENT_CASES)
def test_unreadable_documents(
    settings: Settings, raw: bytes, path: str | None, fragments: list[str]
) -> None:
    if path is None:
        assert parse_request(raw, settings).location == "eastus"
        return
    problems = problems_of(raw, settings)
    assert len(problems) == 1
    assert_problem(problems, path, *fragments)


CONTRACT_CASES = [
    pytest.param(with_(apiVersion=None), "$.apiVersion", ["required field is missing"],
                 id="missing-api-version"),
    pytest.param(with_(apiVersion="gpuprov/v2"), "$.apiVersion",
                 ["unsupported apiVersion 'gpuprov/v2'", "'gpuprov/v1'"], id="wrong-api-version"),
    pytest.param(with_(subscriptionId=None, resourceGroup=None), "$.resourceGroup",
                 ["required field is missing"], id="missing-fields"),
    pytest.param(with_(nodepool={}), "$", ["unknown field 'nodepool'", "did you mean 'nodePool'"],
                 id="unknown-top-level-field"),
    pytest.param(with_(nodePool={"vmSize": "Standard_NC4as_T4_v3", "gpus": 2}), "$.nodePool",
                 ["unknown field 'gpus'", "fields here: name, vmSize"], id="unknown-nested-field"),
    pytest.param(with_(nodePool={"nodeCount": "3"}), "$.nodePool.nodeCount",
                 ["valid integer", "got a string"], id="string-for-integer"),
    pytest.param(with_(nodePool={"nodeCount": 2.5}), "$.nodePool.nodeCount",
                 ["valid integer"], id="fraction-for-integer"),
    pytest.param(with_(nodePool={"nodeCount": True}), "$.nodePool.nodeCount",
                 ["valid integer", "got a boolean"], id="boolean-for-integer"),
    pytest.param(with_(nodePool={"managedGpu": "yes"}), "$.nodePool.managedGpu",
                 ["valid boolean", "got a string"], id="string-for-boolean"),
    pytest.param(with_(nodePool={"taints": "sku=gpu:NoSchedule"}), "$.nodePool.taints",
                 ["valid list", "got a string"], id="string-for-list"),
    pytest.param(with_(nodePool={"nodeCount": 0}), "$.nodePool.nodeCount",
                 ["greater than or equal to 1"], id="zero-nodes"),
    pytest.param(with_(target={"clusterName": "c"}), "$.target", ["missing 'kind'"],
                 id="target-without-kind"),
    pytest.param(with_(target={"kind": "cluster", "clusterName": "c"}), "$.target",
                 ["unknown kind 'cluster'", "'newCluster' or 'existingCluster'"],
                 id="unknown-target-kind"),
    pytest.param(with_(target={"kind": "existingCluster", "clusterName": "c", "entraId": True}),
                 "$.target", ["unknown field 'entraId'"], id="entra-id-on-existing-cluster"),
    pytest.param(with_(nodePool={"zones": ["4"]}), "$.nodePool.zones[0]", ["'1', '2' or '3'"],
                 id="bad-zone"),
    pytest.param(with_(nodePool={"gpuDriver": "install"}), "$.nodePool.gpuDriver",
                 ["'Install' or 'None'"], id="driver-case"),
    pytest.param(with_(devicePlugin={"install": "yes"}), "$.devicePlugin.install",
                 ["'auto', 'always' or 'never'"], id="bad-install-mode"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "path", "fragments"), CONTRACT_CASES)
def test_contract_errors(settings: Settings, raw: bytes, path: str, fragments: list[str]) -> None:
    assert_problem(problems_of(raw, settings), path, *fragments)


NAMING_CASES = [
    pytest.param(with_(requestId="run/42"), "$.requestId", ["Durable instance id"],
                 id="request-id-slash"),
    pytest.param(with_(requestId="x" * 64), "$.requestId", ["1-63"], id="request-id-too-long"),
    pytest.param(with_(subscriptionId="my-sub"), "$.subscriptionId", ["GUID"], id="subscription"),
    pytest.param(with_(resourceGroup="rg."), "$.resourceGroup", ["not ending in '.'"],
                 id="resource-group-trailing-dot"),
    pytest.param(with_(resourceGroup="r" * 91), "$.resourceGroup", ["1-90"],
                 id="resource-group-too-long"),
    pytest.param(with_(location="East-US!"), "$.location", ["short name", "eastus"],
                 id="location"),
    pytest.param(with_(target={"kind": "newCluster", "clusterName": "-aks"}),
                 "$.target.clusterName", ["starting and ending with a letter or digit"],
                 id="cluster-leading-hyphen"),
    pytest.param(with_(nodePool={"name": "GpuPool"}), "$.nodePool.name",
                 ["1-12 lowercase letters or digits"], id="pool-uppercase"),
    pytest.param(with_(nodePool={"name": "gpupoolnumber1"}), "$.nodePool.name", ["1-12"],
                 id="pool-too-long"),
    pytest.param(with_(nodePool={"name": "1gpu"}), "$.nodePool.name", ["starting with a letter"],
                 id="pool-leading-digit"),
    pytest.param(with_(nodePool={"taints": ["sku=gpu"]}), "$.nodePool.taints[0]",
                 ["key=value:Effect"], id="taint-without-effect"),
    pytest.param(with_(nodePool={"taints": ["sku=gpu:NoRun"]}), "$.nodePool.taints[0]",
                 ["unknown effect 'NoRun'", "NoSchedule"], id="taint-bad-effect"),
    pytest.param(with_(nodePool={"labels": {"kubernetes.azure.com/mode": "x"}}),
                 "$.nodePool.labels['kubernetes.azure.com/mode']", ["reserved for AKS"],
                 id="label-reserved-prefix"),
    pytest.param(with_(nodePool={"labels": {"team": "a b"}}), "$.nodePool.labels.team",
                 ["label values"], id="label-value-space"),
    pytest.param(with_(nodePool={"vmSize": "NC6"}), "$.nodePool.vmSize", ["Standard_NC4as_T4_v3"],
                 id="vm-size-shape"),
    pytest.param(with_(job={"name": "MNIST"}), "$.job.name", ["lowercase"], id="job-name"),
    pytest.param(with_(job={"env": {"1BAD": "x"}}), "$.job.env['1BAD']",
                 ["environment variable names"], id="env-name"),
    pytest.param(with_(devicePlugin={"image": "Not An Image"}), "$.devicePlugin.image",
                 ["container image reference"], id="image"),
    pytest.param(with_(nodePool={"customHeaders": {"Bad Header": "1"}}),
                 "$.nodePool.customHeaders['Bad Header']", ["HTTP header name"], id="header-name"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "path", "fragments"), NAMING_CASES)
def test_naming_rules(settings: Settings, raw: bytes, path: str, fragments: list[str]) -> None:
    assert_problem(problems_of(raw, settings), path, *fragments)


def test_header_values_are_not_echoed(settings: Settings) -> None:
    secretish = "token\nabc123"
    raw = with_(nodePool={"customHeaders": {"X-Thing": secretish}})
    problems = problems_of(raw, settings)
    assert_problem(problems, "$.nodePool.customHeaders['X-Thing']", "printable ASCII")
    assert all("abc123" not in p.message for p in problems)


POLICY_CASES = [
    pytest.param({}, with_(nodePool={"vmSize": "Standard_NC6"}), "$.nodePool.vmSize",
                 ["retired on 2023-09-06", "use Standard_NC4as_T4_v3"], id="retired-nc6"),
    pytest.param({}, with_(nodePool={"vmSize": "Standard_NC6s_v3"}), "$.nodePool.vmSize",
                 ["retired on 2025-09-30", "Standard_NC24ads_A100_v4"], id="retired-nc6s-v3"),
    pytest.param({}, with_(nodePool={"alternativeVmSizes": ["Standard_NC12"]}),
                 "$.nodePool.alternativeVmSizes[0]", ["retired"], id="retired-alternative"),
    pytest.param({}, with_(nodePool={"vmSize": "Standard_D4s_v5"}), "$.nodePool.vmSize",
                 ["not a GPU VM size", "Standard_NC4as_T4_v3"], id="not-a-gpu-size"),
    pytest.param({}, with_(nodePool={"alternativeVmSizes": ["standard_nc4as_t4_v3"]}),
                 "$.nodePool.alternativeVmSizes[0]", ["listed twice"], id="size-twice"),
    pytest.param({}, with_(nodePool={"vmSize": "Standard_NV36ads_A10_v5"}), "$.nodePool.vmSize",
                 ["GRID driver", "gpuDriver to None"], id="a10-needs-grid"),
    pytest.param({}, with_(nodePool={"migProfile": "MIG1g"}), "$.nodePool.vmSize",
                 ["does not support MIG profile MIG1g", "A100 or H100"], id="mig-on-t4"),
    pytest.param({}, with_(job={"gpusPerPod": 2}), "$.nodePool.vmSize",
                 ["asks for 2 GPUs per pod", "has 1"], id="pod-wants-more-gpus-than-vm"),
    pytest.param({}, with_(nodePool={"customHeaders": {"UseGPUDedicatedVHD": "true"}}),
                 "$.nodePool.customHeaders.UseGPUDedicatedVHD", ["retired on 2025-01-10"],
                 id="retired-gpu-image-header"),
    pytest.param({}, with_(previewFeatures=[{"name": "GPUDedicatedVHDPreview"}]),
                 "$.previewFeatures[0].name", ["retired on", "ManagedGPUExperiencePreview"],
                 id="retired-gpu-image-feature"),
    pytest.param({}, with_(target={"kind": "existingCluster", "clusterName": "shared"},
                           cleanup={"deleteCluster": True}),
                 "$.cleanup.deleteCluster", ["never deletes a cluster it did not create"],
                 id="delete-existing-cluster"),
    pytest.param({}, with_(nodePool={"managedGpu": True, "gpuDriver": "None"}),
                 "$.nodePool.managedGpu", ["set gpuDriver to Install"],
                 id="managed-without-driver"),
    pytest.param({}, with_(nodePool={"managedGpu": True}, devicePlugin={"install": "always"}),
                 "$.devicePlugin.install", ["conflict", "auto or never"], id="managed-plus-plugin"),
    pytest.param({}, with_(nodePool={"spot": {"maxPrice": 0.123456}}), "$.nodePool.spot.maxPrice",
                 ["at most 5 decimals"], id="spot-price-precision"),
    pytest.param({}, with_(nodePool={"spot": {"maxPrice": 0}}), "$.nodePool.spot.maxPrice",
                 ["-1"], id="spot-price-zero"),
    pytest.param({}, with_(nodePool={"zones": ["1", "1"]}), "$.nodePool.zones[1]",
                 ["listed twice"], id="zone-twice"),
    pytest.param({}, with_(resourceGroup="r" * 40,
                           target={"kind": "newCluster", "clusterName": "c" * 40}),
                 "$.target.clusterName", ["node resource group", "more than 80"],
                 id="node-resource-group-too-long"),
    pytest.param({"GPUPROV_ALLOWED_SUBSCRIPTIONS": "11111111-1111-1111-1111-111111111111"},
                 with_(), "$.subscriptionId", ["not allowed here", "11111111-1111",
                                               "GPUPROV_ALLOWED_SUBSCRIPTIONS"],
                 id="subscription-not-allowed"),
    pytest.param({"GPUPROV_ALLOWED_RESOURCE_GROUPS": "gpu-rg, other-rg"}, with_(),
                 "$.resourceGroup", ["not allowed here", "gpu-rg, other-rg"], id="rg-not-allowed"),
    pytest.param({"GPUPROV_ALLOWED_LOCATIONS": "westeurope"}, with_(), "$.location",
                 ["'eastus' is not allowed here", "westeurope"], id="location-not-allowed"),
    pytest.param({"GPUPROV_ALLOWED_VM_SIZES": "Standard_NC24ads_A100_v4"}, with_(),
                 "$.nodePool.vmSize", ["Standard_NC4as_T4_v3 is not allowed here"],
                 id="size-not-allowed"),
    pytest.param({"GPUPROV_MAX_NODES_PER_REQUEST": "2"}, with_(nodePool={"nodeCount": 3}),
                 "$.nodePool.nodeCount", ["3 nodes", "the 2 one request may have"],
                 id="too-many-nodes"),
    pytest.param({"GPUPROV_MAX_GPUS_PER_REQUEST": "4"},
                 with_(nodePool={"vmSize": "Standard_NC4as_T4_v3",
                                 "alternativeVmSizes": ["Standard_NC64as_T4_v3"],
                                 "nodeCount": 2}),
                 "$.nodePool.alternativeVmSizes[0]", ["8 GPUs", "more than the 4"],
                 id="fallback-size-exceeds-gpus"),
    pytest.param({"GPUPROV_MAX_TTL_HOURS": "12"}, with_(cleanup={"ttlHours": 48}),
                 "$.cleanup.ttlHours", ["48 hours", "12 allowed"], id="ttl-too-long"),
]  # fmt: skip


@pytest.mark.parametrize(("env", "raw", "path", "fragments"), POLICY_CASES)
def test_policy(env: dict[str, str], raw: bytes, path: str, fragments: list[str]) -> None:
    assert_problem(problems_of(raw, Settings.from_env(env)), path, *fragments)


def test_every_problem_is_reported_at_once(settings: Settings) -> None:
    raw = with_(
        resourceGroup="rg.",
        nodePool={"name": "GPU", "nodeCount": "two", "colour": "green"},
    )
    paths = {p.path for p in problems_of(raw, settings)}
    assert {"$.resourceGroup", "$.nodePool.name", "$.nodePool.nodeCount", "$.nodePool"} <= paths


def test_allow_lists_compare_case_insensitively() -> None:
    settings = Settings.from_env(
        {"GPUPROV_ALLOWED_RESOURCE_GROUPS": "MyResourceGroup", "GPUPROV_ALLOWED_VM_SIZES":
         "standard_nc4as_t4_v3"}
    )  # fmt: skip
    assert parse_request(with_(), settings).resource_group == "myResourceGroup"
