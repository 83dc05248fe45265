"""The Kubernetes simulator's object rules, checked without a server.

Aspects covered: label selector operators (=, ==, !=, in, notin, exists, !key) and parse errors,
taint toleration (Equal, Exists, wildcard, effect), strategic merge driven by the PodSpec schema
(containers and env merge by name, `$patch: delete`, tolerations replaced), JSON patch
operations and a failing test op, resource quantities and their canonical form, server-side
apply's field ownership, and the scheduler's unschedulable message.
"""

from __future__ import annotations

from collections import Counter

import pytest

from sandbox.kube import quantity
from sandbox.kube.apply import ApplyConflict, apply
from sandbox.kube.controllers.scheduler import unschedulable_message
from sandbox.kube.objects import SelectorError, label_selector_matches, parse_aks_taint, tolerates
from sandbox.kube.patch import PatchError, json_patch, strategic_merge
from sandbox.kube.schema import definition_name

POD_SPEC = {"$ref": "#/$defs/io.k8s.api.core.v1.PodSpec"}
DAEMONSET = {"$ref": "#/$defs/" + definition_name("apps", "v1", "DaemonSet")}

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


def test_strategic_merge_follows_the_pod_spec_schema() -> None:
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

    merged = strategic_merge(current, patch, POD_SPEC)

    assert merged["containers"] == [
        {
            "name": "a",
            "image": "a:2",
            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
        }
    ]
    assert [t["key"] for t in merged["tolerations"]] == ["nvidia.com/gpu"], "atomic: replaced"
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
    assert quantity.value(text) == value


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        pytest.param("0.5", "500m", id="fraction-to-milli"),
        pytest.param(1, "1", id="number-to-string"),
        pytest.param("1024Mi", "1Gi", id="binary-largest-suffix"),
        pytest.param("1000", "1k", id="decimal-largest-suffix"),
        pytest.param("1.5Gi", "1536Mi", id="binary-fraction"),
    ],
)
def test_quantities_are_stored_in_their_canonical_form(given: object, stored: str) -> None:
    """resource.Quantity.String(): what a real server returns for what was sent."""
    assert quantity.canonical(given) == stored


def _daemonset(tolerations: list[str], image: str = "plugin:1") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "plugin"},
        "spec": {
            "template": {
                "spec": {
                    "tolerations": [{"key": key, "operator": "Exists"} for key in tolerations],
                    "containers": [{"name": "ctr", "image": image}],
                }
            }
        },
    }


def test_apply_of_fewer_tolerations_leaves_exactly_the_applied_list() -> None:
    live = apply(
        None, _daemonset(["sku", "nvidia.com/gpu"]), "gpuprov", DAEMONSET, "t", force=False
    )

    again = apply(live, _daemonset(["sku"]), "gpuprov", DAEMONSET, "t", force=False)

    assert again["spec"]["template"]["spec"]["tolerations"] == [
        {"key": "sku", "operator": "Exists"}
    ]
    fields = again["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    assert fields["f:tolerations"] == {}, "an atomic list is owned as one field"
    assert fields["f:containers"] == {'k:{"name":"ctr"}': {".": {}, "f:image": {}, "f:name": {}}}


def test_apply_by_another_manager_conflicts_unless_forced() -> None:
    live = apply(None, _daemonset(["sku"]), "gpuprov", DAEMONSET, "t", force=False)

    with pytest.raises(ApplyConflict) as conflict:
        apply(live, _daemonset(["sku"], image="plugin:2"), "other", DAEMONSET, "t", force=False)
    forced = apply(live, _daemonset(["sku"], image="plugin:2"), "other", DAEMONSET, "t", force=True)

    assert conflict.value.conflicts == [
        ("gpuprov", '.spec.template.spec.containers[name="ctr"].image')
    ]
    assert forced["spec"]["template"]["spec"]["containers"][0]["image"] == "plugin:2"
    owners = {e["manager"]: e["fieldsV1"] for e in forced["metadata"]["managedFields"]}
    ctr = 'k:{"name":"ctr"}'
    assert "f:image" not in owners["gpuprov"]["f:spec"]["f:template"]["f:spec"]["f:containers"][ctr]


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
