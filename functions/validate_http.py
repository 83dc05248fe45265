"""POST /api/validate and POST /api/plan: know before submitting, without running anything.

validate: whether a request would be accepted, normalised (defaults filled in, sizes spelled as
Azure spells them). plan: the preflight with no side effect (what `gpuprov plan` prints): each
candidate's fit and reasons, quota, price, the chosen size, the estimate and `canRun`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.durable_functions as df
import azure.functions as func

from functions.http import JSON, failed, json_response, misconfigured, refused

if TYPE_CHECKING:  # the models load on the first call, not at app start
    from shared.request import ProvisionRequest
    from shared.settings import Settings

bp = df.Blueprint()


@bp.route(route="validate", methods=["POST"])
def validate_request(req: func.HttpRequest) -> func.HttpResponse:
    parsed = _parsed(req)
    if isinstance(parsed, func.HttpResponse):
        return parsed
    _, request = parsed
    return func.HttpResponse(request.model_dump_json(), status_code=200, mimetype=JSON)


@bp.route(route="plan", methods=["POST"])
def plan_request(req: func.HttpRequest) -> func.HttpResponse:
    """200 with the plan (`canRun` false says why in `error`); 400 with the request's problems;
    502 when Azure could not be asked."""
    from shared.arm import ArmAdapter
    from shared.errors import StepError

    parsed = _parsed(req)
    if isinstance(parsed, func.HttpResponse):
        return parsed
    settings, request = parsed
    try:
        with ArmAdapter(settings) as arm:
            plan = arm.preflight(request)
    except StepError as error:
        return failed(502, f"Azure could not be asked: {error.message}")
    return json_response(plan.wire(), 200)


def _parsed(req: func.HttpRequest) -> tuple[Settings, ProvisionRequest] | func.HttpResponse:
    """The settings and the validated request, or the answer that refuses it: 400 with the
    request's problems, 500 when the app's own settings are wrong."""
    from shared.problems import InvalidRequest
    from shared.settings import SettingsError, current_settings
    from shared.validation import parse_request

    try:
        settings = current_settings()
        return settings, parse_request(req.get_body(), settings)
    except InvalidRequest as invalid:
        return refused(invalid.problems)
    except SettingsError as exc:
        return misconfigured(exc)
