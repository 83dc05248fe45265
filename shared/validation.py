"""Turn raw input (a file, a queue message, an HTTP body) into a normalised, policy-checked request.

Every way input can be wrong ends in InvalidRequest with problems that say where and how to fix
it; nothing here lets a traceback through.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from shared import catalog, policy
from shared.problems import InvalidRequest, Problem, json_path
from shared.request import (
    API_VERSION,
    CONTAINER_SERVICE,
    MANAGED_GPU_FEATURE,
    PreviewFeature,
    ProvisionRequest,
)
from shared.settings import Settings

MAX_REQUEST_BYTES = 64 * 1024
"""A Storage queue message holds at most 64 KiB, so no front door takes a larger request."""

_JSON_TYPES = {
    dict: "an object", list: "an array", str: "a string", bool: "a boolean",
    int: "a number", float: "a number", type(None): "null",
}  # fmt: skip


class _DuplicateKeyError(ValueError):
    pass


def parse_request(raw: bytes | str, settings: Settings) -> ProvisionRequest:
    """Decode, parse, validate, normalise and policy-check one request document."""
    return validate_document(decode_document(raw), settings)


def decode_document(raw: bytes | str) -> Any:
    """UTF-8 JSON text → Python value, refusing what JSON tolerates but a request must not."""
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > MAX_REQUEST_BYTES:
        raise _invalid(
            f"the request is {size} bytes; the limit is {MAX_REQUEST_BYTES} (a Storage queue "
            "message holds at most 64 KiB)"
        )
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _invalid(
                f"the request is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                f"{exc.start}): save it as UTF-8 JSON"
            ) from None
    else:
        text = raw
    if not text.strip():
        raise _invalid(
            f"the request is empty: send a JSON object with at least apiVersion "
            f"({API_VERSION!r}), subscriptionId, resourceGroup, location and target"
        )
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise _invalid(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except _DuplicateKeyError as exc:
        raise _invalid(str(exc)) from None
    except RecursionError:
        raise _invalid("the JSON is nested too deeply to be a request") from None


def validate_document(document: Any, settings: Settings) -> ProvisionRequest:
    """A parsed JSON value → the normalised request, or InvalidRequest with every problem."""
    if not isinstance(document, Mapping):
        raise _invalid(f"expected a JSON object, got {_json_type(document)}")
    try:
        request = ProvisionRequest.model_validate(document)
    except ValidationError as exc:
        raise InvalidRequest([_problem(error) for error in exc.errors(include_url=False)]) from None
    request = normalise(request)
    problems = policy.check(request, settings)
    if problems:
        raise InvalidRequest(problems)
    return request


def normalise(request: ProvisionRequest) -> ProvisionRequest:
    """Make implied choices explicit, so what runs (and what `validate` prints) is all of it."""
    pool = request.node_pool
    canonical = [_canonical_size(s) for s in (pool.vm_size, *pool.alternative_vm_sizes)]
    features = list(request.preview_features)
    wanted = (CONTAINER_SERVICE.lower(), MANAGED_GPU_FEATURE.lower())
    if pool.managed_gpu and all((f.namespace.lower(), f.name.lower()) != wanted for f in features):
        features.append(PreviewFeature.model_validate({"name": MANAGED_GPU_FEATURE}))
    delete_cluster = request.cleanup.delete_cluster
    return request.model_copy(
        update={
            "node_pool": pool.model_copy(
                update={"vm_size": canonical[0], "alternative_vm_sizes": canonical[1:]}
            ),
            "preview_features": features,
            "cleanup": request.cleanup.model_copy(
                update={
                    "delete_cluster": request.creates_cluster
                    if delete_cluster is None
                    else delete_cluster
                }
            ),
        }
    )


def _canonical_size(name: str) -> str:
    size = catalog.lookup(name)
    return size.name if size else name


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest([Problem(path="$", message=message)])


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"the key {key!r} appears twice in one object: keep one")
        result[key] = value
    return result


def _no_constant(name: str) -> None:
    raise _invalid(f"{name} is not a JSON number: give a finite number")


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _problem(error: Mapping[str, Any]) -> Problem:
    """A pydantic error → a Problem: JSONPath in wire names, a message that says the fix."""
    loc, model = _wire_location(error["loc"])
    kind = str(error["type"])
    path = json_path(*loc)
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if kind == "extra_forbidden":
        field = str(loc[-1])
        path = json_path(*loc[:-1])
        known = [f.alias or name for name, f in model.model_fields.items()]
        hint = difflib.get_close_matches(field, known, n=1)
        message = f"unknown field {field!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        message += f"; fields here: {', '.join(known)}"
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "union_tag_not_found":
        message = "missing 'kind': use 'newCluster' or 'existingCluster'"
    elif kind == "union_tag_invalid":
        message = f"unknown kind {error['ctx']['tag']!r}: use 'newCluster' or 'existingCluster'"
    elif kind == "literal_error" and loc == ["apiVersion"]:
        message = (
            f"unsupported apiVersion {error['input']!r}: this provisioner accepts {API_VERSION!r}"
        )
    elif kind.endswith("_type"):
        message = f"{message}, got {_json_type(error['input'])}"
    return Problem(path=path, message=message)


def _wire_location(raw_loc: Sequence[str | int]) -> tuple[list[str | int], type[BaseModel]]:
    """Pydantic's loc → the JSON path (union tags, key markers dropped) and the last model on it."""
    loc: list[str | int] = []
    model: type[BaseModel] = ProvisionRequest
    current: Any = ProvisionRequest
    for part in raw_loc:
        if part == "[key]":
            continue
        members = [m for m in typing.get_args(current) if m is not type(None)]
        if typing.get_origin(current) in (types.UnionType, typing.Union) and len(members) == 1:
            current = members[0]
        if isinstance(current, type) and issubclass(current, BaseModel):
            model = current
            field = next((f for f in current.model_fields.values() if f.alias == part), None)
            current = field.annotation if field else None
        elif typing.get_origin(current) in (types.UnionType, typing.Union):
            current = next((m for m in members if _kind_of(m) == part), None)
            continue  # a discriminated union's tag is not part of the document
        else:
            args = typing.get_args(current)
            current = args[-1] if typing.get_origin(current) in (list, dict) else None
        loc.append(part)
    return loc, model


def _kind_of(member: Any) -> object:
    kind = member.model_fields.get("kind") if issubclass(member, BaseModel) else None
    return typing.get_args(kind.annotation)[0] if kind else None
