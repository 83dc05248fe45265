"""POST /api/validate: check a request against the contract and policy without running anything.

Lets another service (or a person with curl) find out before submitting whether a request would
be accepted, and see it normalised: defaults filled in, sizes spelled as Azure spells them.
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
