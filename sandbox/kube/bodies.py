"""Request bodies as the API server reads them: JSON, YAML or Kubernetes protobuf, then checked
against the kind's schema as `fieldValidation` asks (Strict, Warn or Ignore)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from sandbox.kit import Request
from sandbox.kube import protobuf
from sandbox.kube.errors import unsupported_media_type
from sandbox.kube.kinds import Kind
from sandbox.kube.objects import JSON
from sandbox.kube.schema import definition_name
from sandbox.kube.store import ApiError
from sandbox.kube.validation import drop_unknown, schema_problems


def decode(request: Request, kind: Kind) -> JSON:
    """The request body as JSON, checked against the kind's schema (fieldValidation)."""
    media = request.header("content-type").split(";")[0].strip()
    if media == protobuf.MEDIA_TYPE:
        try:
            document = protobuf.decode(request.body)
        except protobuf.ProtobufError as error:
            raise ApiError(
                400, "BadRequest", f"unable to decode the protobuf body: {error}"
            ) from error
    elif media in ("", "application/json", "application/yaml", "application/apply-patch+yaml"):
        document = loads(request.body)
    else:
        raise unsupported_media_type(media)
    return checked(request, kind, document)


def checked(request: Request, kind: Kind, document: JSON) -> JSON:
    """The document as the kind's schema allows it: 400 for wrong types, and for unknown
    fields under fieldValidation=Strict (kubectl's default); otherwise they are dropped."""
    schema = {"$ref": "#/$defs/" + definition_name(kind.group, kind.version, kind.kind)}
    unknown, wrong = schema_problems(document, schema)
    if wrong:
        raise ApiError(
            400, "BadRequest",
            f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: '
            f"{wrong[0]}",
        )  # fmt: skip
    if unknown and request.query.get("fieldValidation") == "Strict":
        shown = ", ".join(f'unknown field "{path}"' for path in unknown)
        raise ApiError(
            400,
            "BadRequest",
            f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: '
            f"strict decoding error: {shown}",
        )
    return drop_unknown(document, schema) if unknown else document


def check_name(document: JSON, name: str) -> None:
    given = (document.get("metadata") or {}).get("name")
    if given != name:
        raise ApiError(
            400,
            "BadRequest",
            f"the name of the object ({given}) does not match the name on the URL ({name})",
        )


def loads_any(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except json.JSONDecodeError as error:
        raise ApiError(400, "BadRequest", f"invalid JSON body: {error}") from error


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def loads(body: bytes) -> JSON:
    """JSON or YAML (apply bodies may be either); must be an object."""
    try:
        document = json.loads(body or b"{}")  # most bodies; the YAML parser is ~50x slower
    except (json.JSONDecodeError, UnicodeDecodeError):
        document = None
    try:
        if document is None:
            document = yaml.load(body.decode(), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ApiError(400, "BadRequest", f"invalid body: {error}") from error
    if not isinstance(document, dict):
        raise ApiError(400, "BadRequest", "the body must be an object")
    return document
