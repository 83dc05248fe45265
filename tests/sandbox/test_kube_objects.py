"""The Kubernetes simulator's object rules, checked without a server.

Aspects covered: label selector operators (=, ==, !=, in, notin, exists, !key) and parse errors,
taint toleration (Equal, Exists, wildcard, effect), strategic merge of containers, env and
tolerations (including `$patch: delete`), JSON patch operations and a failing test op, resource
quantities, and the scheduler's unschedulable message.
"""

from __future__ import annotations

from collections import Counter

import pytest

from sandbox.kube.cluster import unschedulable_message
from sandbox.kube.objects import (
    PatchError,
    SelectorError,
    json_patch,
    label_selector_matches,
    parse_aks_taint,
    quantity,
    strategic_merge,
    tolerates,
)

LABELS = {"app": "mnist", "tier": "gpu"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("app=mnist", True, id="equals"),
        pytest.param("app==other", False, id="double-equals"),
        pytest.param("app!=other", True, id="not-equals"),
        pytest.param("app in (mnist, x),tier", True, id="in-and-exists"),
        pytest.param("tier notin (gpu)", False, id="notin"),
        pytest.param("!zone", True, id="not-exists"),
        pytest.param("!tier", False, id="not-exists-present"),
        pytest.param("", True, id="empty"),
    ],
)
def test_label_selector(selector: str, expected: bool) -> None:
    assert label_selector_matches(selector, LABELS) is expected


def test_label_selector_that_cannot_be_parsed_is_an_error() -> None:
    with pytest.raises(SelectorError):
        label_selector_matches("app in mnist", LABELS)


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        pytest.param({"key": "sku", "value": "gpu", "effect": "NoSchedule"}, True, id="equal"),
        pytest.param({"key": "sku", "operator": "Exists"}, True, id="exists-any-effect"),
        pytest.param({"operator": "Exists"}, True, id="wildcard"),
        pytest.param({"key": "sku", "value": "cpu", "effect": "NoSchedule"}, False, id="value"),
        pytest.param({"key": "sku", "value": "gpu", "effect": "NoExecute"}, False, id="effect"),
        pytest.param({"key": "nvidia.com/gpu", "operator": "Exists"}, False, id="other-key"),
    ],
)
def test_toleration_of_the_aks_gpu_taint(toleration: dict[str, str], expected: bool) -> None:
    assert tolerates([toleration], parse_aks_taint("sku=gpu:NoSchedule")) is expected


def test_strategic_merge_merges_keyed_lists_and_deletes_on_request() -> None:
    current = {
        "containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"},
        ],
        "tolerations": [{"key": "sku", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"pool": "gpu"},
    }
    patch = {
        "containers": [
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
            {"name": "b", "$patch": "delete"},
        ],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {"pool": None},
    }

    merged = strategic_merge(current, patch)

    assert merged["containers"] == [
        {
            "name": "a",
            "image": "a:2",
            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
        }
    ]
    assert [t["key"] for t in merged["tolerations"]] == ["sku", "nvidia.com/gpu"]
    assert merged["nodeSelector"] == {}


def test_json_patch_applies_operations_in_order_and_fails_a_false_test() -> None:
    doc = {"spec": {"replicas": 1, "items": ["a"]}}
    patched = json_patch(
        doc,
        [
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/items/-", "value": "b"},
            {"op": "remove", "path": "/spec/items/0"},
            {"op": "copy", "from": "/spec/replicas", "path": "/spec/copied"},
        ],
    )
    assert patched == {"spec": {"replicas": 3, "items": ["b"], "copied": 3}}
    assert doc == {"spec": {"replicas": 1, "items": ["a"]}}, "the original is untouched"
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": 2}])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("500m", 0.5, id="milli"),
        pytest.param("2", 2.0, id="plain"),
        pytest.param("1Ki", 1024.0, id="binary"),
        pytest.param("1G", 1e9, id="decimal"),
    ],
)
def test_quantity(text: str, value: float) -> None:
    assert quantity(text) == value


def test_unschedulable_message_counts_reasons_like_the_scheduler() -> None:
    reasons = Counter(
        {"node(s) had untolerated taint {sku: gpu}": 2, "Insufficient nvidia.com/gpu": 1}
    )
    assert unschedulable_message(3, reasons) == (
        "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) had untolerated taint "
        "{sku: gpu}. preemption: 0/3 nodes are available: 3 Preemption is not helpful for "
        "scheduling."
    )
    assert unschedulable_message(0, Counter()) == "no nodes available to schedule pods"
