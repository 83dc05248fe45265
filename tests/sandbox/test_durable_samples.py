# mypy: disallow-untyped-decorators=False
"""The Durable Functions Python samples' patterns, through the local Functions host over HTTP.

Each run starts as the samples start it: `POST /api/orchestrators/{name}` to an HTTP starter that
uses the real `DurableOrchestrationClient` and answers with the check-status response; the test
then follows `statusQueryGetUri` and raises events through `sendEventPostUri`, as a user would.
Covers (azure-functions-durable-python samples-v2): function chaining; fan-out/fan-in; human
interaction with a timer (approved in time, and timed out); monitor; a sub-orchestration failure
caught by the parent and uncaught (the parent fails); activity retries; an eternal orchestration
(continue-as-new, history bounded); and the counter entity (signals, then a call that reads its
state, and an operation that raises, caught by the orchestrator; and signalled and read by a
client from an HTTP function, as the sample does). On
the host's ManualClock, durable timers fire as soon as nothing else can happen. One host per
test: like the Functions worker, the durable client keeps one HTTP session per process loop.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from sandbox.clock import ManualClock, ScaledClock
from sandbox.functions_host import LocalFunctionsHost

ATTEMPTS: dict[str, int] = {}
app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> Any:
    """The samples' DurableFunctionsHttpStart."""
    body = req.get_body()
    instance_id = await client.start_new(
        req.route_params["functionName"], None, json.loads(body) if body else None
    )
    return client.create_check_status_response(req, instance_id)


@app.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"


@app.orchestration_trigger(context_name="context")
def hello_orchestrator(context: df.DurableOrchestrationContext) -> Any:
    """Function chaining."""
    result1 = yield context.call_activity("say_hello", "Tokyo")
    result2 = yield context.call_activity("say_hello", "Seattle")
    result3 = yield context.call_activity("say_hello", "London")
    return [result1, result2, result3]


@app.activity_trigger(input_name="count")
def list_work(count: int) -> list[int]:
    return list(range(1, count + 1))


@app.activity_trigger(input_name="item")
def square(item: int) -> int:
    return item * item


@app.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext) -> Any:
    work = yield context.call_activity("list_work", context.get_input())
    results = yield context.task_all([context.call_activity("square", n) for n in work])
    return sum(results)


@app.activity_trigger(input_name="phone")
def send_challenge(phone: str) -> int:
    return 1234


@app.orchestration_trigger(context_name="context")
def human_interaction(context: df.DurableOrchestrationContext) -> Any:
    """The samples' SMS verification: three tries to answer before a 90-second deadline."""
    code = yield context.call_activity("send_challenge", context.get_input())
    deadline = context.current_utc_datetime + timedelta(seconds=90)
    timeout_task = context.create_timer(deadline)
    for _ in range(3):
        answer_task = context.wait_for_external_event("SmsChallengeResponse")
        winner = yield context.task_any([answer_task, timeout_task])
        if winner == timeout_task:
            return "timed out"
        if answer_task.result == code:
            timeout_task.cancel()
            return "approved"
    timeout_task.cancel()
    return "too many attempts"


@app.activity_trigger(input_name="job")
def job_state(job: str) -> str:
    ATTEMPTS[job] = ATTEMPTS.get(job, 0) + 1
    return "Completed" if ATTEMPTS[job] >= 3 else "Running"


@app.orchestration_trigger(context_name="context")
def monitor(context: df.DurableOrchestrationContext) -> Any:
    job = context.get_input()
    expiry = context.current_utc_datetime + timedelta(hours=1)
    polls = 0
    while context.current_utc_datetime < expiry:
        polls += 1
        state = yield context.call_activity("job_state", job)
        if state == "Completed":
            return {"polls": polls, "state": state}
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
    return {"polls": polls, "state": "expired"}


@app.activity_trigger(input_name="reason")
def fail_with(reason: str) -> str:
    raise RuntimeError(reason)


@app.orchestration_trigger(context_name="context")
def failing_child(context: df.DurableOrchestrationContext) -> Any:
    return (yield context.call_activity("fail_with", context.get_input()))


@app.orchestration_trigger(context_name="context")
def parent_catches(context: df.DurableOrchestrationContext) -> Any:
    try:
        yield context.call_sub_orchestrator("failing_child", "disk full")
    except Exception as error:
        return f"caught: {error}"
    return "not reached"


@app.orchestration_trigger(context_name="context")
def parent_lets_it_fail(context: df.DurableOrchestrationContext) -> Any:
    return (yield context.call_sub_orchestrator("failing_child", "quota exceeded"))


@app.activity_trigger(input_name="key")
def flaky(key: str) -> str:
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise ConnectionError(f"attempt {ATTEMPTS[key]} failed")
    return f"ok after {ATTEMPTS[key]}"


@app.orchestration_trigger(context_name="context")
def with_retries(context: df.DurableOrchestrationContext) -> Any:
    options = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)
    return (yield context.call_activity_with_retry("flaky", options, context.get_input()))


@app.orchestration_trigger(context_name="context")
def eternal(context: df.DurableOrchestrationContext) -> Any:
    """The samples' eternal orchestration (cleanup every hour), stopped after five rounds."""
    rounds = context.get_input() or 0
    yield context.call_activity("say_hello", f"round {rounds}")
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    if rounds + 1 >= 5:
        return rounds + 1
    context.continue_as_new(rounds + 1)
    return None


def _host(clock: ManualClock | ScaledClock) -> Iterator[LocalFunctionsHost]:
    ATTEMPTS.clear()
    with LocalFunctionsHost(app, env={}, clock=clock, poll_seconds=0.05) as host:
        yield host


@pytest.fixture
def host() -> Iterator[LocalFunctionsHost]:
    """Timers fire as soon as the host is otherwise idle."""
    yield from _host(ManualClock())


@pytest.fixture
def real_time_host() -> Iterator[LocalFunctionsHost]:
    """Real time: a 90-second deadline leaves the test time to answer."""
    yield from _host(ScaledClock(1.0))


def _post(url: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = b"" if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}


def _start(host: LocalFunctionsHost, name: str, body: Any = None) -> dict[str, Any]:
    status, urls = _post(f"{host.http_url}/api/orchestrators/{name}", body)
    assert status == 202
    return urls


def _status(urls: dict[str, Any]) -> dict[str, Any]:
    with urllib.request.urlopen(urls["statusQueryGetUri"], timeout=30) as response:
        return dict(json.loads(response.read()))


def _finished(urls: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = _status(urls)
        if status["runtimeStatus"] in ("Completed", "Failed", "Terminated"):
            return status
        assert time.monotonic() < deadline, f"still {status['runtimeStatus']}"
        time.sleep(0.05)


def _raise(urls: dict[str, Any], event: str, data: Any) -> None:
    status, _ = _post(urls["sendEventPostUri"].replace("{eventName}", event), data)
    assert status == 202


def test_function_chaining(host: LocalFunctionsHost) -> None:
    status = _finished(_start(host, "hello_orchestrator"))
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_fan_out_fan_in(host: LocalFunctionsHost) -> None:
    status = _finished(_start(host, "fan_out_fan_in", 10))
    assert status["output"] == sum(n * n for n in range(1, 11))


def test_human_interaction_answered_in_time(real_time_host: LocalFunctionsHost) -> None:
    urls = _start(real_time_host, "human_interaction", "+1-555-0100")
    _raise(urls, "SmsChallengeResponse", 1111)  # wrong code: another try
    _raise(urls, "SmsChallengeResponse", 1234)
    status = _finished(urls)
    assert (status["runtimeStatus"], status["output"]) == ("Completed", "approved")


def test_human_interaction_times_out(host: LocalFunctionsHost) -> None:
    status = _finished(_start(host, "human_interaction", "+1-555-0101"))
    assert status["output"] == "timed out"


def test_monitor_polls_until_done(host: LocalFunctionsHost) -> None:
    status = _finished(_start(host, "monitor", "job-7"))
    assert status["output"] == {"polls": 3, "state": "Completed"}


def test_sub_orchestration_failure_caught(host: LocalFunctionsHost) -> None:
    status = _finished(_start(host, "parent_catches"))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"].startswith("caught:")
    assert "disk full" in status["output"]


def test_sub_orchestration_failure_uncaught_fails_the_parent(host: LocalFunctionsHost) -> None:
    status = _finished(_start(host, "parent_lets_it_fail"))
    assert status["runtimeStatus"] == "Failed"
    assert "quota exceeded" in json.dumps(status["output"])


def test_activity_retries(host: LocalFunctionsHost) -> None:
    status = _finished(_start(host, "with_retries", "flaky-1"))
    assert status["output"] == "ok after 3"


def test_eternal_orchestration_keeps_history_bounded(host: LocalFunctionsHost) -> None:
    urls = _start(host, "eternal", 0)
    status = _finished(urls)
    assert status["output"] == 5
    with urllib.request.urlopen(urls["statusQueryGetUri"] + "&showHistory=true") as response:
        history = json.loads(response.read())["historyEvents"]
    assert len(history) < 15, "one round's history, not five"


@app.entity_trigger(context_name="context")
def counter(context: df.DurableEntityContext) -> None:
    """The samples' counter entity."""
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        value += context.get_input()
    elif operation == "subtract":
        if value - context.get_input() < 0:
            raise ValueError("the counter cannot go below zero")
        value -= context.get_input()
    elif operation == "get":
        context.set_result(value)
    context.set_state(value)


@app.orchestration_trigger(context_name="context")
def count_up(context: df.DurableOrchestrationContext) -> Any:
    entity = df.EntityId("counter", context.get_input())
    context.signal_entity(entity, "add", 5)
    context.signal_entity(entity, "add", 2)
    total = yield context.call_entity(entity, "get")
    try:
        yield context.call_entity(entity, "subtract", 100)
    except Exception as error:
        return {"total": total, "refused": str(error)}
    return {"total": total, "refused": None}


@app.route(route="counter/{key}", methods=["GET", "POST"])
@app.durable_client_input(client_name="client")
async def counter_http(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> Any:
    """The counter sample's HTTP function: POST signals `add`, GET reads the state."""
    entity = df.EntityId("counter", req.route_params["key"])
    if req.method == "POST":
        await client.signal_entity(entity, "add", int(req.get_body()))
        return func.HttpResponse(status_code=202)
    state = await client.read_entity_state(entity)
    if not state.entity_exists:
        return func.HttpResponse(status_code=404)
    return func.HttpResponse(json.dumps(state.entity_state), mimetype="application/json")


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def test_entity_counter_from_a_client(host: LocalFunctionsHost) -> None:
    url = f"{host.http_url}/api/counter/from-http"
    assert _get(url) == (404, None)
    assert _post(url, 5)[0] == 202
    assert _post(url, 3)[0] == 202
    deadline = time.monotonic() + 30
    while _get(url) != (200, 8):
        assert time.monotonic() < deadline, f"the counter reads {_get(url)}"
        time.sleep(0.05)


def test_entity_counter_signals_then_calls(host: LocalFunctionsHost) -> None:
    first = _finished(_start(host, "count_up", "k1"))
    assert first["output"] == {
        "total": 7,
        "refused": "the counter cannot go below zero",
    }
    again = _finished(_start(host, "count_up", "k1"))
    assert again["output"]["total"] == 14, "the entity keeps its state between calls"
    other = _finished(_start(host, "count_up", "k2"))
    assert other["output"]["total"] == 7, "each key is its own entity"
