"""The Azure Functions entry point: a Durable Functions app registering the functions/ blueprints.

Nothing else belongs here: SDK imports and settings reads happen where they are used, so the
worker's cold start stays short.
"""

import azure.durable_functions as df
import azure.functions as func

from functions.activities import bp as activities
from functions.intake import bp as intake
from functions.orchestrator import bp as orchestrator
from functions.reaper import bp as reaper
from functions.validate_http import bp as validate_http

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(orchestrator)
app.register_functions(activities)
app.register_functions(intake)
app.register_functions(reaper)
app.register_functions(validate_http)
