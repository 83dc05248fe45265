"""The Functions app as the host sees it: host.json, indexing, and POST /api/validate.

Covers: host.json settings the later triggers rely on (bundle v4, maxDequeueCount, task hub),
function_app registering only blueprints, and the validate endpoint answering 200 with the
normalised request or 400 with JSON errors (validate and plan: 500 when the app is
misconfigured); the reaper timer's schedule from settings; and a cold start that loads no cloud
SDK nor the request models; every activity registered under the name of its implementation.
"""

from __future__ import annotations

import json
import subprocess
import sys

import azure.functions as func
import pytest
from azure.functions.decorators.function_app import Function
from azure.functions.decorators.http import HttpMethod, HttpTrigger
from azure.functions.decorators.timer import TimerTrigger

from tests.conftest import EXAMPLES, ROOT


def test_host_json_configures_bundle_queues_and_task_hub() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["version"].startswith("[4.")
    assert host["extensions"]["queues"]["maxDequeueCount"] == 5
    assert host["extensions"]["durableTask"]["hubName"] == "gpuprov"


@pytest.fixture(scope="module")
def functions() -> dict[str, Function]:
    import function_app

    function_app.app.functions_bindings = None
    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def call_validate(functions: dict[str, Function], body: bytes) -> func.HttpResponse:
    request = func.HttpRequest(method="POST", url="/api/validate", body=body)
    response = functions["validate_request"].get_user_function()(request)
    assert isinstance(response, func.HttpResponse)
    return response


def test_app_indexes_the_validate_route(functions: dict[str, Function]) -> None:
    trigger = functions["validate_request"].get_trigger()
    assert isinstance(trigger, HttpTrigger)
    assert trigger.route == "validate"
    assert trigger.methods == [HttpMethod.POST]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_validate_accepts_examples(functions: dict[str, Function], path: object) -> None:
    response = call_validate(functions, EXAMPLES[EXAMPLES.index(path)].read_bytes())  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body())["apiVersion"] == "gpuprov/v1"


def test_validate_rejects_with_json_errors(functions: dict[str, Function]) -> None:
    response = call_validate(functions, b'{"apiVersion": "gpuprov/v1", "nodePool": {"name": "X"}}')
    assert response.status_code == 400
    errors = json.loads(response.get_body())["errors"]
    assert {"path": "$.subscriptionId", "message": "required field is missing"} in errors
    assert any(e["path"] == "$.nodePool.name" for e in errors)


@pytest.mark.parametrize("name", ["validate_request", "plan_request"])
def test_misconfigured_app_answers_500_naming_the_setting(
    functions: dict[str, Function], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A wrong app setting is the operator's to fix, not the caller's: 500 naming the setting,
    before any request is read or Azure is asked."""
    from shared.settings import current_settings

    monkeypatch.setenv("GPUPROV_REAPER_GRACE_HOURS", "-1")
    current_settings.cache_clear()
    try:
        request = func.HttpRequest(method="POST", url=f"/api/{name}", body=b"{}")
        response = functions[name].get_user_function()(request)
    finally:
        monkeypatch.undo()
        current_settings.cache_clear()
    assert response.status_code == 500
    [error] = json.loads(response.get_body())["errors"]
    assert error["path"] == "$"
    assert error["message"].startswith("the provisioner is misconfigured: invalid app settings")
    assert "GPUPROV_REAPER_GRACE_HOURS" in error["message"]


def test_reaper_timer_reads_its_schedule_from_settings(functions: dict[str, Function]) -> None:
    reaper = functions["reap_expired"]
    trigger = reaper.get_trigger()
    assert isinstance(trigger, TimerTrigger)
    assert trigger.schedule == "%GPUPROV_REAPER_SCHEDULE%"
    bindings = {b["type"] for b in json.loads(reaper.get_function_json())["bindings"]}
    assert bindings == {"timerTrigger", "durableClient"}


def test_app_start_loads_no_cloud_sdk() -> None:
    """The worker imports function_app on a cold start; the SDKs and the request models load
    in the functions, on their first call."""
    probe = (
        "import sys, function_app; function_app.app.get_functions();"
        "print(sorted(m for m in sys.modules if m.startswith(%r)))"
    )
    heavy = (
        "azure.mgmt", "kubernetes", "azure.servicebus", "azure.storage", "azure.identity",
        "pydantic", "opentelemetry.sdk",
    )  # fmt: skip
    loaded = subprocess.run(
        [sys.executable, "-c", probe % (heavy,)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert loaded.strip() == "[]"


def test_every_activity_is_registered_under_its_implementation(
    functions: dict[str, Function],
) -> None:
    from functions.activities import ACTIVITIES

    activities = {
        name
        for name, function in functions.items()
        if (trigger := function.get_trigger()) and trigger.get_binding_name() == "activityTrigger"
    }
    assert activities == set(ACTIVITIES)
    assert all(ACTIVITIES[name].__name__ == name for name in activities)
    assert {"start_create_node_pool", "check_operation", "publish_events"} <= activities
