"""The JSON answers the HTTP triggers share: one shape for a refused request, one for a
misconfigured app, whichever endpoint gives them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import azure.functions as func

if TYPE_CHECKING:  # the models load on the first call, not at app start
    from shared.problems import Problem

JSON = "application/json"


def json_response(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, default=str), status_code=status, mimetype=JSON, headers=headers
    )


def refused(problems: Iterable[Problem]) -> func.HttpResponse:
    """400 with the request's problems, each with its path: the caller fixes the request."""
    return json_response({"errors": [p.model_dump() for p in problems]}, 400)


def misconfigured(exc: Exception) -> func.HttpResponse:
    """500: the app's settings are wrong, not the request."""
    return failed(500, f"the provisioner is misconfigured: {exc}")


def failed(status: int, message: str) -> func.HttpResponse:
    return json_response({"errors": [{"path": "$", "message": message}]}, status)
