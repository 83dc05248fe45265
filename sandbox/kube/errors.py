"""Status errors the API server answers with, worded as kube-apiserver words them."""

from __future__ import annotations

from http import HTTPStatus

from sandbox.kube.apply import ApplyConflict
from sandbox.kube.kinds import Kind
from sandbox.kube.store import ApiError

_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def not_acceptable(served: list[str]) -> ApiError:
    """apimachinery's negotiation error for an Accept header it cannot satisfy."""
    return ApiError(
        406, "NotAcceptable", "only the following media types are accepted: " + ", ".join(served)
    )


def invalid_list_options(kind: Kind) -> ApiError:
    """sendInitialEvents needs bookmarks and resourceVersionMatch=NotOlderThan."""
    return ApiError(
        422,
        "Invalid",
        f'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents '
        f"requires setting allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan "
        f"({kind.plural})",
    )


def unsupported_media_type(media: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/yaml, application/vnd.kubernetes.protobuf ({media})",
    )


def fault_error(code: int, method: str, plural: str, namespace: str, name: str) -> ApiError:
    """An injected fault, as the real server would word that status."""
    if code == 403:
        return ApiError(
            403,
            "Forbidden",
            f'{plural} is forbidden: User "sandbox-user" cannot {_VERBS.get(method, method)}'
            f' resource "{plural}" in the namespace "{namespace}"',
        )
    if code == 409:
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {plural} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
        )
    if code == 500:
        return ApiError(
            500,
            "InternalError",
            'Internal error occurred: an error on the server ("injected fault") has prevented '
            "the request from succeeding",
        )
    phrase = HTTPStatus(code).phrase
    return ApiError(code, phrase.replace(" ", ""), f"injected fault: {phrase}")


def conflict_error(kind: Kind, name: str, conflict: ApplyConflict) -> ApiError:
    """409 Conflict worded as the apiserver's apply conflict (internal/fieldmanager)."""
    count = len(conflict.conflicts)
    lines = [f'conflict with "{manager}": {path}' for manager, path in conflict.conflicts]
    message = (
        f"Apply failed with {count} conflict{'s' if count > 1 else ''}: " + "\n".join(lines)
        if count > 1
        else f"Apply failed with 1 conflict: {lines[0]}"
    )
    return ApiError(
        409,
        "Conflict",
        message,
        {
            "name": name,
            "group": kind.group,
            "kind": kind.plural,
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": f'conflict with "{manager}"',
                    "field": path,
                }
                for manager, path in conflict.conflicts
            ],
        },
    )
