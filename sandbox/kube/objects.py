"""Object-level rules of the Kubernetes API: selectors, patches, quantities, tolerations.

Pure functions over JSON dicts, so the API layer and the controllers share one meaning of
"matches", "tolerates" and "merge".
"""

from __future__ import annotations

import copy
import re
from typing import Any

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

FIELD_PATHS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName"),
    "nodes": ("spec.unschedulable",),
    "namespaces": ("status.phase",),
    "jobs": ("status.successful",),
    "daemonsets": (),
}


def _field_value(obj: JSON, path: str) -> str:
    if path == "status.successful":
        return str((obj.get("status") or {}).get("succeeded", 0))
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_selector_matches(selector: str | None, resource: str, obj: JSON) -> bool:
    """Evaluate a field selector; unsupported fields raise SelectorError like the API server."""
    if not selector:
        return True
    allowed = {"metadata.name", "metadata.namespace", *FIELD_PATHS.get(resource, ())}
    for requirement in _split_requirements(selector):
        match = re.match(r"^\s*([^!=\s]+)\s*(==|=|!=)\s*(.*?)\s*$", requirement)
        if not match:
            raise SelectorError(f"invalid selector: {requirement!r}")
        path, operator, expected = match.groups()
        if path not in allowed:
            raise SelectorError(f'field label not supported: "{path}"')
        if (_field_value(obj, path) == expected) != (operator != "!="):
            return False
    return True


# --- patches ---------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
}


def _identity(item: JSON, fields: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(item.get(name) for name in fields)


def strategic_merge(target: Any, patch: Any) -> Any:
    """Strategic merge patch: like a merge patch, but lists of known kinds merge by key.

    Containers, volumes, env and the like merge by name; tolerations merge by (key, effect), so
    a patch adding a toleration keeps the others. `$patch: delete` in a keyed element removes it.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        elif isinstance(value, dict):
            result[key] = strategic_merge(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list(field: str, current: list[Any], patch: list[Any]) -> list[Any]:
    if field == "tolerations":
        fields: tuple[str, ...] = ("key", "effect")
    elif field in _MERGE_KEYS:
        fields = (_MERGE_KEYS[field],)
    else:
        return [item for item in copy.deepcopy(patch) if item != {"$patch": "replace"}]
    merged = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            continue
        index = next(
            (
                i
                for i, existing in enumerate(merged)
                if _identity(existing, fields) == _identity(item, fields)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = strategic_merge(merged[index], item)
    return merged


class PatchError(ValueError):
    """A JSON patch that cannot be applied (422/400 on the real server)."""


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.get(part)
        if node is None:
            raise PatchError("path not found: /" + "/".join(parts))
    return node


def json_patch(target: JSON, operations: list[Any]) -> JSON:
    """RFC 6902 JSON patch (add, remove, replace, test, copy, move)."""
    doc = copy.deepcopy(target)
    for operation in operations:
        op = operation.get("op")
        parts = _pointer(operation.get("path", ""))
        if op in ("copy", "move"):
            source = _pointer(operation.get("from", ""))
            source_parent = _parent(doc, source)
            leaf = source[-1]
            value = (
                source_parent[int(leaf)]
                if isinstance(source_parent, list)
                else (source_parent[leaf])
            )
            if op == "move":
                del source_parent[int(leaf) if isinstance(source_parent, list) else leaf]
            operation = {"value": copy.deepcopy(value)}
            op = "add"
        parent = _parent(doc, parts)
        leaf = parts[-1]
        try:
            if op == "add":
                if isinstance(parent, list):
                    position = len(parent) if leaf == "-" else int(leaf)
                    parent.insert(position, copy.deepcopy(operation["value"]))
                else:
                    parent[leaf] = copy.deepcopy(operation["value"])
            elif op == "replace":
                if isinstance(parent, list):
                    parent[int(leaf)] = copy.deepcopy(operation["value"])
                elif leaf in parent:
                    parent[leaf] = copy.deepcopy(operation["value"])
                else:
                    raise PatchError(f"replace of missing path {operation['path']}")
            elif op == "remove":
                del parent[int(leaf) if isinstance(parent, list) else leaf]
            elif op == "test":
                actual = parent[int(leaf)] if isinstance(parent, list) else parent.get(leaf)
                if actual != operation.get("value"):
                    raise PatchError(f"test failed at {operation['path']}")
            else:
                raise PatchError(f"unknown op {op!r}")
        except (KeyError, IndexError, ValueError) as error:
            if isinstance(error, PatchError):
                raise
            raise PatchError(f"cannot apply {op} at {operation.get('path')}") from error
    return doc


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


# --- quantities ------------------------------------------------------------------------------

_SUFFIXES = {
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
}


def quantity(value: Any) -> float:
    """Parse a resource quantity ('500m', '2', '16Gi') into a number."""
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"\s*([0-9.]+)([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"invalid quantity {value!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def pod_requests(pod: JSON) -> dict[str, float]:
    """Summed container requests (limits stand in for missing requests, as the API defaults)."""
    totals: dict[str, float] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, amount in merged.items():
            totals[name] = totals.get(name, 0.0) + quantity(amount)
    return totals
