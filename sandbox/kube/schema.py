"""The Kubernetes API's own schemas, as the `kubernetes-validate` wheel ships them.

One source for what the simulator knows about a type's fields: OpenAPI documents, list and patch
strategies for apply and strategic merge patch, and type checks for validation. The wheel converts
the Kubernetes OpenAPI (with its `x-kubernetes-*` extensions) into JSON Schema per release.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

SCHEMA_RELEASE = "v1.33.0"
"""The release whose schemas we serve: the simulated API server reports v1.33."""
_REF = "#/$defs/"


@functools.cache
def definitions() -> dict[str, JSON]:
    """Every definition of the release's API, by its OpenAPI name (io.k8s.api.core.v1.Pod…)."""
    # The package's data, found without importing it (its __init__ imports jsonschema: 0.2 s).
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("kubernetes-validate is not installed: run make setup")
    root = Path(spec.submodule_search_locations[0]) / "kubernetes-json-schema"
    path = root / f"{SCHEMA_RELEASE}-local-strict" / "_definitions.json"
    document: JSON = json.loads(path.read_text())
    return dict(document["$defs"])


def definition_name(group: str, version: str, kind: str) -> str:
    """The definition whose x-kubernetes-group-version-kind is (group, version, kind)."""
    return _gvk_index()[(group, version, kind)]


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            index[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return index


def resolve(schema: JSON | None) -> JSON:
    """The schema itself, or the definition it refers to."""
    if not schema:
        return {}
    ref = schema.get("$ref")
    if ref and ref.startswith(_REF):
        return definitions()[ref[len(_REF) :]]
    return schema


def types(schema: JSON) -> set[str]:
    """The JSON types a schema allows, without null ("local" schemas allow null everywhere)."""
    found: set[str] = set()
    declared = schema.get("type")
    if isinstance(declared, str):
        found.add(declared)
    elif isinstance(declared, list):
        found.update(declared)
    for option in schema.get("oneOf") or []:
        found |= types(option)
    found.discard("null")
    return found


@dataclass(frozen=True)
class ListStrategy:
    """How a list field merges: apply (list-type) and strategic merge patch (patch strategy)."""

    list_type: str
    """atomic, set or map (x-kubernetes-list-type; atomic when the schema says nothing)."""
    map_keys: tuple[str, ...]
    patch_strategy: str
    """'' (replace the list), 'merge' or 'retainKeys' (x-kubernetes-patch-strategy)."""
    merge_key: str


def list_strategy(schema: JSON) -> ListStrategy:
    strategy = str(schema.get("x-kubernetes-patch-strategy") or "")
    return ListStrategy(
        list_type=str(schema.get("x-kubernetes-list-type") or "atomic"),
        map_keys=tuple(schema.get("x-kubernetes-list-map-keys") or ()),
        patch_strategy=strategy,
        merge_key=str(schema.get("x-kubernetes-patch-merge-key") or ""),
    )


def field_schema(schema: JSON, name: str) -> JSON:
    """The (resolved) schema of a field of an object, or of a map's values."""
    resolved = resolve(schema)
    properties = resolved.get("properties") or {}
    if name in properties:
        return properties[name]
    extra = resolved.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def item_schema(schema: JSON) -> JSON:
    items = resolve(schema).get("items")
    return items if isinstance(items, dict) else {}


def is_atomic_map(schema: JSON) -> bool:
    """Objects whose x-kubernetes-map-type is atomic (e.g. a LabelSelector) are replaced whole."""
    return resolve(schema).get("x-kubernetes-map-type") == "atomic"
