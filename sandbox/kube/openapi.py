"""OpenAPI v2 and v3 documents for the served kinds, as an API server publishes them.

kubectl reads `/openapi/v3` to find out, per kind, whether the PATCH operation takes the
`fieldValidation` query parameter (then validation happens on the server, cli-runtime's
`QueryParamVerifierV3`), and `kubectl explain` reads the component schemas. The schemas come from
`schema.definitions()`: JSON Schema turned back into OpenAPI (refs, one type, int-or-string).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any

from sandbox.kube.kinds import KINDS, Kind
from sandbox.kube.schema import JSON, definition_name, definitions

SERVER_VERSION = "v1.33.2"


def _openapi_schema(schema: Any, prefix: str) -> Any:
    """JSON Schema (kubernetes-validate) → OpenAPI schema object with refs under `prefix`."""
    if isinstance(schema, list):
        return [_openapi_schema(item, prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "oneOf" in schema and {"integer", "string"} <= {
        t for option in schema["oneOf"] for t in _as_list(option.get("type"))
    }:
        return {"type": "string", "format": "int-or-string"}
    if "oneOf" in schema:  # Quantity: string or number on input, always a string on output
        return {"type": "string"}
    result: JSON = {}
    for key, value in schema.items():
        if key == "$ref":
            result[key] = prefix + value.rsplit("/", 1)[-1]
        elif key == "type":
            kinds = [t for t in _as_list(value) if t != "null"]
            if kinds:
                result[key] = kinds[0]
        elif key == "enum" and None in value:
            result[key] = [item for item in value if item is not None]
        elif key == "properties":
            result[key] = {name: _openapi_schema(item, prefix) for name, item in value.items()}
        elif key == "additionalProperties" and value is False:
            continue  # the strict variant forbids unknown fields; OpenAPI leaves that open
        else:
            result[key] = _openapi_schema(value, prefix)
    return result


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _closure(names: list[str]) -> list[str]:
    """The definitions these refer to, transitively, in a stable order."""
    seen: dict[str, None] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen[name] = None
        pending.extend(_refs(definitions()[name]))
    return sorted(seen)


def _refs(schema: Any) -> list[str]:
    if isinstance(schema, list):
        return [ref for item in schema for ref in _refs(item)]
    if not isinstance(schema, dict):
        return []
    found = [schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else []
    return found + [ref for value in schema.values() for ref in _refs(value)]


def _kind_definitions(kinds: list[Kind]) -> list[str]:
    names = [definition_name(k.group, k.version, k.kind) for k in kinds]
    names += [definition_name(k.group, k.version, f"{k.kind}List") for k in kinds if k.listable]
    return _closure([*names, "io.k8s.apimachinery.pkg.apis.meta.v1.Status"])


def _parameter(name: str, kind: str = "string") -> JSON:
    return {"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": True}}


def _operation(kind: Kind, action: str, ref: str, verb: str) -> JSON:
    parameters = []
    if action in ("post", "put", "patch"):
        parameters = [
            _parameter("dryRun"),
            _parameter("fieldManager"),
            _parameter("fieldValidation"),
        ]
    if action == "patch":
        parameters.append(_parameter("force", "boolean"))
    return {
        "operationId": f"{verb}{kind.kind}",
        "parameters": parameters,
        "responses": {"200": {"content": {"application/json": {"schema": {"$ref": ref}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": kind.group,
            "version": kind.version,
            "kind": kind.kind,
        },
    }


def _paths(kinds: list[Kind], prefix: str) -> JSON:
    paths: JSON = {}
    for kind in kinds:
        ref = prefix + definition_name(kind.group, kind.version, kind.kind)
        base = f"/{kind.path_prefix}" + ("/namespaces/{namespace}" if kind.namespaced else "")
        collection = f"{base}/{kind.plural}"
        paths[collection] = {"post": _operation(kind, "post", ref, "create")}
        if kind.listable:
            paths[collection]["get"] = _operation(kind, "list", ref, "list")
            paths[collection + "/{name}"] = {
                "get": _operation(kind, "get", ref, "read"),
                "put": _operation(kind, "put", ref, "replace"),
                "patch": _operation(kind, "patch", ref, "patch"),
                "delete": _operation(kind, "delete", ref, "delete"),
            }
    return paths


@functools.cache
def v2() -> bytes:
    """The Swagger 2.0 document of every served kind (`GET /openapi/v2`, JSON)."""
    kinds = list(KINDS.values())
    prefix = "#/definitions/"
    document = {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION},
        "paths": _paths(kinds, prefix),
        "definitions": {
            name: _openapi_schema(copy.deepcopy(definitions()[name]), prefix)
            for name in _kind_definitions(kinds)
        },
    }
    return json.dumps(document).encode()


@functools.cache
def v3_documents() -> dict[str, bytes]:
    """`api/v1`, `apis/apps/v1`… → that group-version's OpenAPI 3.0 document."""
    prefix = "#/components/schemas/"
    groups: dict[str, list[Kind]] = {}
    for kind in KINDS.values():
        groups.setdefault(kind.path_prefix, []).append(kind)
    documents = {}
    for path, kinds in sorted(groups.items()):
        document = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": SERVER_VERSION},
            "paths": _paths(kinds, prefix),
            "components": {
                "schemas": {
                    name: _openapi_schema(copy.deepcopy(definitions()[name]), prefix)
                    for name in _kind_definitions(kinds)
                }
            },
        }
        documents[path] = json.dumps(document).encode()
    return documents


def v3_index() -> JSON:
    """`GET /openapi/v3`: where each group-version's document is, with a content hash."""
    return {
        "paths": {
            path: {
                "serverRelativeURL": f"/openapi/v3/{path}?hash="
                + hashlib.sha512(document).hexdigest()[:128].upper()
            }
            for path, document in v3_documents().items()
        }
    }
