"""Object-level rules of the Kubernetes API: selectors, tolerations, node affinity, requests.

Pure functions over JSON dicts, so the API layer and the controllers share one meaning of
"matches", "tolerates" and "merge".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.kube import quantity

JSON = dict[str, Any]


class SelectorError(ValueError):
    """A label or field selector the API server would answer with 400 BadRequest."""


# --- label selectors -------------------------------------------------------------------------

_SET_RE = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=,()]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=,()]+)\s*$")


def _split_requirements(selector: str) -> list[str]:
    """Split on commas that are not inside an `in (...)` value list."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def label_selector_matches(selector: str | None, labels: dict[str, str]) -> bool:
    """Evaluate a label selector string (=, ==, !=, in, notin, key, !key) against labels."""
    if not selector:
        return True
    for requirement in _split_requirements(selector):
        if match := _SET_RE.match(requirement):
            values = {value.strip() for value in match["values"].split(",")}
            present = match["key"] in labels and labels[match["key"]] in values
            if present != (match["op"] == "in"):
                return False
        elif match := _EQ_RE.match(requirement):
            equal = labels.get(match["key"]) == match["value"]
            if equal != (match["op"] != "!="):
                return False
        elif match := _EXISTS_RE.match(requirement):
            if (match["key"] in labels) == bool(match["neg"]):
                return False
        else:
            raise SelectorError(f"unable to parse requirement: {requirement!r}")
    return True


def match_labels_selector(selector: JSON | None, labels: dict[str, str]) -> bool:
    """Evaluate a structured LabelSelector (matchLabels + matchExpressions)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression_matches(expr, labels) for expr in selector.get("matchExpressions") or [])


def _expression_matches(expression: JSON, labels: dict[str, str]) -> bool:
    key = expression.get("key", "")
    operator = expression.get("operator", "")
    values = expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt") and key in labels and values:
        try:
            actual, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return actual > bound if operator == "Gt" else actual < bound
    return False


# --- field selectors -------------------------------------------------------------------------


def field_selector_matches(
    selector: str | None, labels: dict[str, Callable[[JSON], str]], obj: JSON
) -> bool:
    """Evaluate a field selector over the fields a kind supports (others: SelectorError, 400).

    `labels` maps each supported field beyond metadata.name/namespace to its value as the
    kind's registry strategy computes it (so an unset spec.unschedulable reads "false").
    """
    if not selector:
        return True
    values: dict[str, Callable[[JSON], str]] = {
        "metadata.name": lambda o: str(o["metadata"].get("name", "")),
        "metadata.namespace": lambda o: str(o["metadata"].get("namespace", "")),
        **labels,
    }
    for requirement in _split_requirements(selector):
        match = re.match(r"^\s*([^!=\s]+)\s*(==|=|!=)\s*(.*?)\s*$", requirement)
        if not match:
            raise SelectorError(f"invalid selector: {requirement!r}")
        path, operator, expected = match.groups()
        if path not in values:
            raise SelectorError(f'field label not supported: "{path}"')
        if (values[path](obj) == expected) != (operator != "!="):
            return False
    return True


# --- taints, tolerations, node affinity -------------------------------------------------------


def parse_aks_taint(text: str) -> JSON:
    """'sku=gpu:NoSchedule' (or 'key:Effect') → a node taint object."""
    key_value, _, effect = text.rpartition(":")
    key, _, value = key_value.partition("=")
    taint: JSON = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def tolerates(tolerations: list[JSON], taint: JSON) -> bool:
    """Whether any toleration tolerates the taint (operator Equal by default, Exists wildcard)."""
    for toleration in tolerations:
        effect = toleration.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        operator = toleration.get("operator") or "Equal"
        key = toleration.get("key")
        if operator == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def untolerated_taint(pod_spec: JSON, node: JSON) -> JSON | None:
    """The first NoSchedule/NoExecute taint of the node the pod does not tolerate."""
    tolerations = pod_spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return taint
    return None


def node_selected(pod_spec: JSON, node: JSON) -> bool:
    """nodeSelector and required node affinity (matchExpressions on labels)."""
    labels = node["metadata"].get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    return any(
        all(_expression_matches(expr, labels) for expr in term.get("matchExpressions") or [])
        for term in terms
    )


# --- resources ------------------------------------------------------------------------------


def pod_requests(pod: JSON) -> dict[str, float]:
    """Summed container requests (limits stand in for missing requests, as the API defaults)."""
    totals: dict[str, float] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, amount in merged.items():
            totals[name] = totals.get(name, 0.0) + quantity.value(amount)
    return totals
