"""PATCH bodies: JSON patch (RFC 6902, the jsonpatch package), merge patch (RFC 7386), and
strategic merge patch driven by the schema's x-kubernetes-patch-strategy / patch-merge-key.

Strategic merge follows k8s.io/apimachinery/pkg/util/strategicpatch: a list merges by its merge
key only when its schema says `merge`; every other list (tolerations, args, command…) is
replaced. Directives: `$patch: replace|delete|merge`, `$retainKeys`,
`$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` (order only; ignored here).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch  # type: ignore[import-untyped]  # no stubs published
import jsonpointer

from sandbox.kube.schema import JSON, field_schema, item_schema, list_strategy


class PatchError(ValueError):
    """A patch that cannot be applied (the API server answers 422)."""


def json_patch(target: JSON, operations: Any) -> JSON:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch is a list of operations")
    try:
        result = jsonpatch.apply_patch(target, operations)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError) as error:
        raise PatchError(str(error)) from error
    if not isinstance(result, dict):
        raise PatchError("the patched document is not an object")
    return result


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


def strategic_merge(target: Any, patch: Any, schema: JSON) -> Any:
    """Apply a strategic merge patch to `target`, whose type the schema describes."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [item for item in result.get(name) or [] if item not in value]
            continue
        if key.startswith("$"):
            continue
        child = field_schema(schema, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, child)
        elif isinstance(value, dict):  # maps always merge in SMP (map-type is for apply)
            merged = strategic_merge(result.get(key), value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: Any, patch: list[Any], schema: JSON) -> list[Any]:
    strategy = list_strategy(schema)
    if "merge" not in strategy.patch_strategy.split(",") or not isinstance(current, list):
        return [item for item in copy.deepcopy(patch) if item != {"$patch": "replace"}]
    if {"$patch": "replace"} in patch:
        return [item for item in copy.deepcopy(patch) if item != {"$patch": "replace"}]
    if not strategy.merge_key:  # a merging list of primitives: union, patch order last
        return list(current) + [item for item in patch if item not in current]
    key = strategy.merge_key
    merged = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            continue
        index = next((i for i, old in enumerate(merged) if old.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(strategic_merge({}, item, item_schema(schema)))
        else:
            merged[index] = strategic_merge(merged[index], item, item_schema(schema))
    return merged
