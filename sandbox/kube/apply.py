"""Server-side apply and field ownership (managedFields), after sigs.k8s.io/structured-merge-diff.

Every write records which manager owns which fields, as FieldsV1 paths (`f:<field>`, `k:<keys>`
for items of map lists, `v:<value>` for set lists). An apply by manager M with configuration C:
- conflicts where C sets a field to a value other than the live one and another manager owns it
  (409 unless forced; forcing takes the field over);
- merges C into the live object as the schema says: maps recursively, `map` lists item by item
  (x-kubernetes-list-map-keys), `set` lists as a union, `atomic` lists and atomic maps replaced;
- removes the fields M applied before, no longer applies, and nobody else owns.
Updates (create, PUT, PATCH) give their manager the fields they changed, taken from the others.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sandbox.kube.schema import (
    JSON,
    field_schema,
    is_atomic_map,
    item_schema,
    list_strategy,
    resolve,
)

Path = tuple[str, ...]
_MISSING = object()
_IGNORED: frozenset[Path] = frozenset(
    [("f:apiVersion",), ("f:kind",)]
    + [
        ("f:metadata", f"f:{name}")
        for name in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        )
    ]
)


class ApplyConflict(Exception):
    """Fields another manager owns with a different value: (manager, path) pairs."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        super().__init__(conflicts)
        self.conflicts = conflicts


# --- field sets --------------------------------------------------------------------------------


def _key(item: JSON, keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps(
        {k: item[k] for k in keys if k in item}, separators=(",", ":"), sort_keys=True
    )


def _is_map(schema: JSON) -> bool:
    resolved = resolve(schema)
    return isinstance(resolved.get("additionalProperties"), dict) and not resolved.get("properties")


def field_set(value: Any, schema: JSON, status: bool = False) -> set[Path]:
    """The paths a document sets; `status` selects the status part instead of everything else."""
    found: set[Path] = set()
    _collect(value, schema, (), found, member=False)
    return {
        path
        for path in found
        if path and path not in _IGNORED and (path[0] == "f:status") == status
    }


def _collect(value: Any, schema: JSON, prefix: Path, found: set[Path], member: bool) -> None:
    if isinstance(value, dict) and value and not is_atomic_map(schema):
        if prefix and (member or _is_map(schema)):
            found.add(prefix)
        for key, item in value.items():
            _collect(item, field_schema(schema, key), (*prefix, f"f:{key}"), found, False)
        return
    strategy = list_strategy(resolve(schema))
    if isinstance(value, list) and value and strategy.list_type == "map":
        for item in value:
            path = (*prefix, _key(item, strategy.map_keys))
            _collect(item, item_schema(schema), path, found, True)
        return
    if isinstance(value, list) and value and strategy.list_type == "set":
        for item in value:
            found.add((*prefix, "v:" + json.dumps(item, separators=(",", ":"))))
        return
    found.add(prefix)


def to_fields_v1(paths: set[Path]) -> JSON:
    tree: JSON = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node["."] = {}
    return _tidy(tree)


def _tidy(node: JSON) -> JSON:
    """A leaf is `{}`; `"."` stays only where the path has children too."""
    children = {k: _tidy(v) for k, v in node.items() if k != "."}
    if "." in node and children:
        return {".": {}, **children}
    return children


def from_fields_v1(tree: JSON, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    if not tree and prefix:
        paths.add(prefix)
    for key, child in tree.items():
        if key == ".":
            paths.add(prefix)
        else:
            paths |= from_fields_v1(child, (*prefix, key))
    return paths


# --- reading and removing paths ---------------------------------------------------------------


def _step(value: Any, part: str, schema: JSON) -> tuple[Any, JSON]:
    if part.startswith("f:"):
        name = part[2:]
        found = value.get(name, _MISSING) if isinstance(value, dict) else _MISSING
        return found, field_schema(schema, name)
    if not isinstance(value, list):
        return _MISSING, {}
    if part.startswith("k:"):
        keys = json.loads(part[2:])
        match = next(
            (
                i
                for i in value
                if isinstance(i, dict) and all(i.get(k) == v for k, v in keys.items())
            ),
            _MISSING,
        )
        return match, item_schema(schema)
    wanted = json.loads(part[2:])
    return (wanted if wanted in value else _MISSING), {}


def value_at(obj: Any, path: Path, schema: JSON) -> Any:
    value: Any = obj
    for part in path:
        value, schema = _step(value, part, schema)
        if value is _MISSING:
            return _MISSING
    return value


def remove_path(obj: Any, path: Path, schema: JSON) -> None:
    parent: Any = obj
    for part in path[:-1]:
        parent, schema = _step(parent, part, schema)
        if parent is _MISSING:
            return
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        target, _ = _step(parent, last, schema)
        if target is not _MISSING:
            parent.remove(target)


# --- merging -----------------------------------------------------------------------------------


def merge(live: Any, config: Any, schema: JSON) -> Any:
    """The apply merge of a configuration into the live object."""
    if isinstance(config, dict) and isinstance(live, dict) and not is_atomic_map(schema):
        result = copy.deepcopy(live)
        for key, value in config.items():
            result[key] = merge(live.get(key), value, field_schema(schema, key))
        return result
    strategy = list_strategy(resolve(schema))
    if isinstance(config, list) and isinstance(live, list) and strategy.list_type == "map":
        items = copy.deepcopy(live)
        for item in config:
            key = _key(item, strategy.map_keys)
            index = next(
                (i for i, old in enumerate(items) if _key(old, strategy.map_keys) == key), None
            )
            if index is None:
                items.append(copy.deepcopy(item))
            else:
                items[index] = merge(items[index], item, item_schema(schema))
        return items
    if isinstance(config, list) and isinstance(live, list) and strategy.list_type == "set":
        return copy.deepcopy(live) + [item for item in config if item not in live]
    return copy.deepcopy(config)


# --- managedFields -----------------------------------------------------------------------------


def _entries(obj: JSON | None) -> list[JSON]:
    return copy.deepcopy(((obj or {}).get("metadata") or {}).get("managedFields") or [])


def _entry(
    manager: str, operation: str, api_version: str, now: str, paths: set[Path], subresource: str
) -> JSON:
    entry: JSON = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def _same(entry: JSON, manager: str, operation: str, subresource: str) -> bool:
    return (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == (
        manager,
        operation,
        subresource,
    )


def _rebuild(entries: list[JSON], owned: list[set[Path]], mine: JSON) -> list[JSON]:
    result = []
    for entry, paths in zip(entries, owned, strict=True):
        if paths:
            result.append({**entry, "fieldsV1": to_fields_v1(paths)})
    index = next(
        (
            i
            for i, e in enumerate(result)
            if _same(e, mine["manager"], mine["operation"], mine.get("subresource", ""))
        ),
        None,
    )
    if mine["fieldsV1"]:
        if index is None:
            result.append(mine)
        else:
            result[index] = mine
    elif index is not None:
        result.pop(index)
    return result


def track_update(
    old: JSON | None, new: JSON, manager: str, schema: JSON, now: str, subresource: str = ""
) -> None:
    """Record an update: its manager owns what it changed; the others lose those fields."""
    status = subresource == "status"
    before = field_set(old, schema, status) if old else set()
    after = field_set(new, schema, status)
    changed = {
        p for p in after if p not in before or value_at(old, p, schema) != value_at(new, p, schema)
    }
    gone = before - after
    entries = [e for e in _entries(old) if not _same(e, manager, "Update", subresource)]
    previous = next((e for e in _entries(old) if _same(e, manager, "Update", subresource)), None)
    owned = [from_fields_v1(e.get("fieldsV1") or {}) - gone - changed for e in entries]
    mine_paths = (from_fields_v1(previous["fieldsV1"]) - gone if previous else set()) | changed
    mine = _entry(manager, "Update", new["apiVersion"], now, mine_paths, subresource)
    new["metadata"]["managedFields"] = _rebuild(entries, owned, mine)


def apply(
    live: JSON | None, config: JSON, manager: str, schema: JSON, now: str, *, force: bool
) -> JSON:
    """The object after manager's apply of `config` (raises ApplyConflict)."""
    config = {k: v for k, v in config.items() if k != "status"}
    applied = field_set(config, schema)
    entries = _entries(live)
    mine_index = next((i for i, e in enumerate(entries) if _same(e, manager, "Apply", "")), None)
    previous = from_fields_v1(entries[mine_index]["fieldsV1"]) if mine_index is not None else set()
    others = [e for i, e in enumerate(entries) if i != mine_index]
    owned = [from_fields_v1(e.get("fieldsV1") or {}) for e in others]
    leaves = {p for p in applied if not any(q != p and q[: len(p)] == p for q in applied)}
    conflicts: list[tuple[str, str]] = []
    for entry, paths in zip(others, owned, strict=True):
        if entry.get("manager") == manager or entry.get("subresource"):
            continue
        for path in sorted(leaves & paths):
            if live is not None and value_at(live, path, schema) != value_at(config, path, schema):
                conflicts.append((entry["manager"], _dotted(path)))
                if force:
                    paths.discard(path)
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    result = merge(live or {}, config, schema)
    still_owned = set().union(*owned) if owned else set()
    for path in sorted(previous - applied - still_owned, key=len, reverse=True):
        remove_path(result, path, schema)
    mine = _entry(manager, "Apply", config.get("apiVersion", ""), now, applied, "")
    result.setdefault("metadata", {})["managedFields"] = _rebuild(others, owned, mine)
    return result


def _dotted(path: Path) -> str:
    """A conflict's field as the API server prints it: .spec.template.spec.tolerations."""
    text = ""
    for part in path:
        if part.startswith("f:"):
            text += "." + part[2:]
        elif part.startswith("k:"):
            text += (
                "["
                + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(part[2:]).items())
                + "]"
            )
        else:
            text += f"[={part[2:]}]"
    return text
