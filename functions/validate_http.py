"""POST /api/validate and POST /api/plan: know before submitting, without running anything.

validate: whether a request would be accepted, normalised (defaults filled in, sizes spelled as
Azure spells them). plan: the preflight with no side effect (what `gpuprov plan` prints): each
candidate's fit and reasons, quota, price, the chosen size, the estimate and `canRun`.
"""

import json

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()

_JSON = "application/json"


@bp.route(route="validate", methods=["POST"])
def validate_request(req: func.HttpRequest) -> func.HttpResponse:
    from shared.problems import InvalidRequest  # the models load on the first call
    from shared.settings import SettingsError, current_settings
    from shared.validation import parse_request

    try:
        request = parse_request(req.get_body(), current_settings())
    except InvalidRequest as invalid:
        errors = [p.model_dump() for p in invalid.problems]
        return func.HttpResponse(json.dumps({"errors": errors}), status_code=400, mimetype=_JSON)
    except SettingsError as exc:
        body = {"errors": [{"path": "$", "message": f"the provisioner is misconfigured: {exc}"}]}
        return func.HttpResponse(json.dumps(body), status_code=500, mimetype=_JSON)
    return func.HttpResponse(request.model_dump_json(), status_code=200, mimetype=_JSON)


@bp.route(route="plan", methods=["POST"])
def plan_request(req: func.HttpRequest) -> func.HttpResponse:
    """200 with the plan (`canRun` false says why in `error`); 400 with the request's problems;
    502 when Azure could not be asked."""
    from shared.arm import ArmAdapter
    from shared.errors import StepError
    from shared.problems import InvalidRequest
    from shared.settings import SettingsError, current_settings
    from shared.validation import parse_request

    try:
        settings = current_settings()
        request = parse_request(req.get_body(), settings)
        with ArmAdapter(settings) as arm:
            plan = arm.preflight(request)
    except InvalidRequest as invalid:
        errors = [p.model_dump() for p in invalid.problems]
        return func.HttpResponse(json.dumps({"errors": errors}), status_code=400, mimetype=_JSON)
    except SettingsError as exc:
        body = {"errors": [{"path": "$", "message": f"the provisioner is misconfigured: {exc}"}]}
        return func.HttpResponse(json.dumps(body), status_code=500, mimetype=_JSON)
    except StepError as error:
        body = {"errors": [{"path": "$", "message": f"Azure could not be asked: {error.message}"}]}
        return func.HttpResponse(json.dumps(body), status_code=502, mimetype=_JSON)
    return func.HttpResponse(json.dumps(plan.wire()), status_code=200, mimetype=_JSON)
