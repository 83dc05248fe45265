# mypy: disallow-untyped-decorators=False
"""The local Functions host runs a DFApp's triggers with real clients over real sockets.

Covers: a Storage queue message (Azurite) runs its async function once and is deleted; a failing
one is retried up to host.json's maxDequeueCount, then lands unchanged in `<queue>-poison`, the
failure logged with the function name and exception message but not the body; a Service Bus
message (local broker) reaches the function with its properties and is completed, a failing one
is abandoned and dead-lettered after MaxDeliveryCount; a timer whose schedule is a `%SETTING%`
fires when a ManualClock reaches it and not before, and once with past_due after a jump; HTTP
routes with route and query parameters, headers and bodies, 401 without the function key, 200
with it, 404 and 405; the real DurableOrchestrationClient in functions: start_new with an id,
create_check_status_response URLs, get_status (with history), raise_event, terminate, a running
id refused with 409, a finished id restarted; a missing app setting refused at start; a startup
timer run at start; stop idempotent, leaving no thread or port; invocation records kept after
stop.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Generator, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
from azure.storage.queue import QueueClient, QueueMessage

from sandbox.azurite import Azurite
from sandbox.clock import ManualClock
from sandbox.functions_host import FunctionsHostError, LocalFunctionsHost
from sandbox.servicebus import CONFIG_PATH, ServiceBusBroker
from tests.conftest import eventually
from tests.sandbox_fixtures import running_broker

WORK_QUEUE = "work-items"
SB_QUEUE = "sb-work"
MAX_DEQUEUES = 3
MAX_DELIVERIES = 2
POLL = 0.1
SCHEDULE = "0 */5 * * * *"  # NCRONTAB: second 0 of every fifth minute
FIVE_MINUTES = 300.0

T = TypeVar("T")

# What the functions saw, for the tests to read back.
QUEUE_CALLS: list[tuple[str, int | None]] = []
SB_CALLS: list[dict[str, Any]] = []
TIMER_CALLS: list[bool] = []

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.queue_trigger(arg_name="message", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
async def work_item(message: func.QueueMessage) -> None:
    body = message.get_body().decode()
    QUEUE_CALLS.append((body, message.dequeue_count))
    if body.startswith("fail"):
        raise RuntimeError("the work item was refused")


@app.service_bus_queue_trigger(
    arg_name="message", queue_name="%SB_QUEUE%", connection="ServiceBusConnection"
)
def bus_item(message: func.ServiceBusMessage) -> None:
    body = message.get_body().decode()
    SB_CALLS.append(
        {
            "body": body,
            "message_id": message.message_id,
            "correlation_id": message.correlation_id,
            "content_type": message.content_type,
            "delivery_count": message.delivery_count,
            "application_properties": message.application_properties,
            "enqueued": message.enqueued_time_utc is not None,
        }
    )
    if body.startswith("fail"):
        raise RuntimeError("the bus item was refused")


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    TIMER_CALLS.append(timer.past_due)


@app.route(route="items/{id}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "id": req.route_params["id"],
        "colour": req.params.get("colour"),
        "trace": req.headers.get("x-trace"),
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="echo", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), status_code=201, headers={"X-Echo": "yes"})


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"hello {name}"


@app.orchestration_trigger(context_name="context")
def greet_and_wait(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any]]:
    greeting = yield context.call_activity("greet", context.get_input()["name"])
    context.set_custom_status({"greeting": greeting})
    approval = yield context.wait_for_external_event("approve")
    return {"greeting": greeting, "approval": approval}


@app.route(route="runs/{id}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def start_run(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    try:
        instance_id = await client.start_new(
            "greet_and_wait", req.route_params["id"], req.get_json()
        )
    except Exception as exc:
        return func.HttpResponse(str(exc), status_code=409)
    return client.create_check_status_response(req, instance_id)


@app.route(route="runs/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def run_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    status = await client.get_status(req.route_params["id"], show_input=True)
    if status.runtime_status is None:
        return func.HttpResponse(status_code=404)
    body = {
        "runtimeStatus": status.runtime_status.value,
        "input": status.input_,
        "output": status.output,
        "customStatus": status.custom_status,
        "created": status.created_time.isoformat(),
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="runs/{id}/events/{name}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def raise_run_event(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    await client.raise_event(req.route_params["id"], req.route_params["name"], req.get_json())
    return func.HttpResponse(status_code=202)


@app.route(route="runs/{id}/terminate", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def terminate_run(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    await client.terminate(req.route_params["id"], "operator said stop")
    return func.HttpResponse(status_code=202)


# ---- fixtures -----------------------------------------------------------------------------


def _broker_config() -> dict[str, Any]:
    document = json.loads(CONFIG_PATH.read_text())
    document["UserConfig"]["Namespaces"][0]["Queues"].append(
        {"Name": SB_QUEUE, "Properties": {"LockDuration": "PT30S", "MaxDeliveryCount": 2}}
    )
    return document


def _host_json(directory: Path) -> Path:
    path = directory / "host.json"
    queues = {
        "maxDequeueCount": MAX_DEQUEUES,
        "visibilityTimeout": "00:00:00",
        "messageEncoding": "none",
    }
    document = {
        "version": "2.0",
        "extensions": {"queues": queues, "durableTask": {"hubName": "testhub"}},
    }
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def broker() -> Iterator[ServiceBusBroker]:
    yield from running_broker(_broker_config())


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def env(azurite: Azurite, broker: ServiceBusBroker) -> dict[str, str]:
    with QueueClient.from_connection_string(azurite.connection_string, WORK_QUEUE) as queue:
        queue.create_queue()
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "ServiceBusConnection": broker.connection_string,
        "WORK_QUEUE": WORK_QUEUE,
        "SB_QUEUE": SB_QUEUE,
        "TICK_SCHEDULE": SCHEDULE,
    }


@pytest.fixture(scope="module")
def host(
    env: dict[str, str], clock: ManualClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalFunctionsHost]:
    host_json = _host_json(tmp_path_factory.mktemp("host"))
    with LocalFunctionsHost(
        app, env=env, clock=clock, host_json=host_json, poll_seconds=POLL
    ) as running:
        yield running


_eventually = partial(eventually, timeout=10.0, waiting_for="the host to act")


def _call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def _message_count(connection_string: str, queue_name: str) -> int:
    with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        return int(queue.get_queue_properties().approximate_message_count or 0)


def _peek(queue: QueueClient) -> list[QueueMessage]:
    """The visible messages; none while the queue does not exist yet."""
    try:
        return list(queue.peek_messages(max_messages=5))
    except ResourceNotFoundError:
        return []


# ---- Storage queue ------------------------------------------------------------------------


def test_queue_message_runs_the_function_once_and_is_deleted(
    host: LocalFunctionsHost, env: dict[str, str]
) -> None:
    with QueueClient.from_connection_string(env["AzureWebJobsStorage"], WORK_QUEUE) as queue:
        queue.send_message('{"requestId": "q-1"}')
    _eventually(lambda: ('{"requestId": "q-1"}', 1) in QUEUE_CALLS)
    _eventually(lambda: _message_count(env["AzureWebJobsStorage"], WORK_QUEUE) == 0)
    time.sleep(5 * POLL)
    assert [c for c in QUEUE_CALLS if "q-1" in c[0]] == [('{"requestId": "q-1"}', 1)]
    record = next(i for i in host.invocations if i.function_name == "work_item")
    assert (record.trigger_type, record.succeeded) == ("queueTrigger", True)


def test_failing_queue_message_goes_to_poison_after_max_dequeue_count(
    host: LocalFunctionsHost, env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    connection = env["AzureWebJobsStorage"]
    body = "fail: secret-request-body"
    with QueueClient.from_connection_string(connection, WORK_QUEUE) as queue:
        queue.send_message(body)
    with QueueClient.from_connection_string(connection, f"{WORK_QUEUE}-poison") as poison:
        parked = _eventually(lambda: _peek(poison))
    assert [m.content for m in parked] == [body]
    assert [count for seen, count in QUEUE_CALLS if seen == body] == [1, 2, 3]
    assert _message_count(connection, WORK_QUEUE) == 0
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert failures
    assert all("work_item" in f and "was refused" in f for f in failures)
    assert not any("secret-request-body" in r.getMessage() for r in caplog.records)


# ---- Service Bus --------------------------------------------------------------------------


def test_service_bus_message_is_delivered_with_its_properties_and_completed(
    host: LocalFunctionsHost, broker: ServiceBusBroker
) -> None:
    message = ServiceBusMessage(
        '{"requestId": "sb-1"}',
        message_id="sb-1",
        correlation_id="corr-1",
        content_type="application/json",
        application_properties={"source": "test"},
    )
    with (
        ServiceBusClient.from_connection_string(broker.connection_string) as client,
        client.get_queue_sender(SB_QUEUE) as sender,
    ):
        sender.send_messages(message)
    seen = _eventually(lambda: [c for c in SB_CALLS if c["message_id"] == "sb-1"])
    assert seen == [
        {
            "body": '{"requestId": "sb-1"}',
            "message_id": "sb-1",
            "correlation_id": "corr-1",
            "content_type": "application/json",
            "delivery_count": 1,
            "application_properties": {"source": "test"},
            "enqueued": True,
        }
    ]
    _eventually(lambda: _settled(broker.counts(SB_QUEUE)))


def _settled(counts: dict[str, int]) -> bool:
    """Nothing left to deliver or locked: the message was completed."""
    return counts["active"] == 0 and counts["locked"] == 0


def test_failing_service_bus_message_is_abandoned_then_dead_lettered(
    host: LocalFunctionsHost, broker: ServiceBusBroker
) -> None:
    with (
        ServiceBusClient.from_connection_string(broker.connection_string) as client,
        client.get_queue_sender(SB_QUEUE) as sender,
    ):
        sender.send_messages(ServiceBusMessage("fail: sb-2", message_id="sb-2"))
        _eventually(lambda: broker.counts(SB_QUEUE)["dead_lettered"] == 1)
        with client.get_queue_receiver(
            SB_QUEUE, sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dead_letters:
            [dead] = dead_letters.receive_messages(max_message_count=1, max_wait_time=5)
            dead_letters.complete_message(dead)
    assert b"".join(dead.body) == b"fail: sb-2"
    counts = [c["delivery_count"] for c in SB_CALLS if c["message_id"] == "sb-2"]
    assert counts == list(range(1, MAX_DELIVERIES + 1))


# ---- timers -------------------------------------------------------------------------------


def test_timer_fires_when_the_clock_reaches_its_schedule_and_not_before(
    host: LocalFunctionsHost, clock: ManualClock
) -> None:
    before = len(TIMER_CALLS)
    due = (clock.now() // FIVE_MINUTES + 1) * FIVE_MINUTES
    clock.advance(due - clock.now() - 1)
    time.sleep(5 * POLL)
    assert len(TIMER_CALLS) == before

    clock.advance(1)
    _eventually(lambda: len(TIMER_CALLS) == before + 1)
    assert TIMER_CALLS[-1] is False

    clock.advance(3 * FIVE_MINUTES)  # three occurrences missed: one past-due run
    _eventually(lambda: len(TIMER_CALLS) == before + 2)
    time.sleep(5 * POLL)
    assert TIMER_CALLS[before:] == [False, True]
    assert {i.trigger_type for i in host.invocations if i.function_name == "tick"} == {
        "timerTrigger"
    }


# ---- HTTP ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_in", "status"),
    [("nowhere", 401), ("query", 200), ("header", 200), ("wrong-key", 401)],
    ids=["no-key-401", "code-query-200", "key-header-200", "wrong-key-401"],
)
def test_function_route_needs_the_function_key(
    host: LocalFunctionsHost, key_in: str, status: int
) -> None:
    url = f"{host.http_url}/api/items/42?colour=blue"
    headers = {"x-trace": "t-1"}
    if key_in == "query":
        url += f"&code={host.function_key}"
    elif key_in == "header":
        headers["x-functions-key"] = host.function_key
    elif key_in == "wrong-key":
        headers["x-functions-key"] = "not-the-key"
    code, response_headers, body = _call("GET", url, headers=headers)
    assert code == status
    if status == 200:
        assert json.loads(body) == {"id": "42", "colour": "blue", "trace": "t-1"}
        assert response_headers["Content-Type"].startswith("application/json")


def test_anonymous_route_echoes_the_body_with_status_and_headers(host: LocalFunctionsHost) -> None:
    code, headers, body = _call("POST", f"{host.http_url}/api/echo", b"\x00payload")
    assert (code, headers["X-Echo"], body) == (201, "yes", b"\x00payload")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/nothing-here", 404), ("GET", "/elsewhere", 404), ("GET", "/api/echo", 405)],
    ids=["unknown-route-404", "outside-api-404", "wrong-method-405"],
)
def test_unknown_routes_and_methods(
    host: LocalFunctionsHost, method: str, path: str, status: int
) -> None:
    assert _call(method, f"{host.http_url}{path}")[0] == status


# ---- durable client -----------------------------------------------------------------------


def _run(host: LocalFunctionsHost, run_id: str) -> dict[str, Any]:
    code, _, body = _call("GET", f"{host.http_url}/api/runs/{run_id}")
    assert code == 200
    status: dict[str, Any] = json.loads(body)
    return status


def test_durable_client_starts_queries_signals_and_refuses_a_running_id(
    host: LocalFunctionsHost,
) -> None:
    runs = f"{host.http_url}/api/runs"
    code, headers, body = _call("POST", f"{runs}/run-1", {"name": "Ada"})
    assert code == 202
    links = json.loads(body)
    assert links["id"] == "run-1"
    assert headers["Location"] == links["statusQueryGetUri"]

    running = _eventually(lambda: (s := _run(host, "run-1"))["customStatus"] and s)
    assert running["runtimeStatus"] == "Running"
    assert running["input"] == {"name": "Ada"}
    assert running["customStatus"] == {"greeting": "hello Ada"}

    code, _, body = _call("POST", f"{runs}/run-1", {"name": "Bob"})
    assert code == 409
    assert "already exists" in body.decode()

    code, _, body = _call("GET", links["statusQueryGetUri"])
    assert (code, json.loads(body)["runtimeStatus"]) == (202, "Running")
    assert _call("GET", links["statusQueryGetUri"].split("&code=")[0])[0] == 401

    assert _call("POST", f"{runs}/run-1/events/approve", {"by": "ops"})[0] == 202
    done = _eventually(lambda: (s := _run(host, "run-1"))["runtimeStatus"] == "Completed" and s)
    assert done["output"] == {"greeting": "hello Ada", "approval": {"by": "ops"}}
    history_url = f"{links['statusQueryGetUri']}&showHistory=true&showHistoryOutput=true"
    code, _, body = _call("GET", history_url)
    finished = json.loads(body)
    assert (code, finished["output"]) == (200, done["output"])
    assert [e["EventType"] for e in finished["historyEvents"]] == [
        "ExecutionStarted",
        "TaskScheduled",
        "TaskCompleted",
        "EventRaised",
        "ExecutionCompleted",
    ]

    code, _, _ = _call("POST", f"{runs}/run-1", {"name": "Cy"})  # finished: started again
    assert code == 202
    again = _eventually(lambda: (s := _run(host, "run-1"))["customStatus"] and s)
    assert (again["input"], again["customStatus"]) == ({"name": "Cy"}, {"greeting": "hello Cy"})


def test_durable_client_terminates_and_unknown_ids_and_orchestrators_are_refused(
    host: LocalFunctionsHost,
) -> None:
    runs = f"{host.http_url}/api/runs"
    assert _call("POST", f"{runs}/run-2", {"name": "Di"})[0] == 202
    _eventually(lambda: _run(host, "run-2")["customStatus"])
    assert _call("POST", f"{runs}/run-2/terminate")[0] == 202
    ended = _eventually(lambda: (s := _run(host, "run-2"))["runtimeStatus"] == "Terminated" and s)
    assert ended["output"] == "operator said stop"
    assert _call("GET", f"{runs}/no-such-run")[0] == 404

    webhooks = f"{host.http_url}/runtime/webhooks/durabletask"
    code, _, body = _call(
        "POST", f"{webhooks}/orchestrators/no_such_orchestrator?code={host.function_key}"
    )
    assert code == 400
    assert "no_such_orchestrator" in json.loads(body)["ExceptionMessage"]


# ---- lifecycle ----------------------------------------------------------------------------


def test_a_missing_app_setting_is_refused_at_start(env: dict[str, str], tmp_path: Path) -> None:
    without_schedule = {k: v for k, v in env.items() if k != "TICK_SCHEDULE"}
    threads = threading.active_count()
    host = LocalFunctionsHost(app, env=without_schedule, host_json=_host_json(tmp_path))
    with pytest.raises(FunctionsHostError, match=r"'tick'.*'TICK_SCHEDULE'"):
        host.start()
    assert threading.active_count() == threads


def test_startup_timer_runs_at_start_and_stop_leaves_no_thread_or_port(tmp_path: Path) -> None:
    small = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    started: list[bool] = []

    @small.route(route="ping")
    def ping(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("pong")

    @small.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
    def at_startup(timer: func.TimerRequest) -> None:
        started.append(timer.past_due)

    before = set(threading.enumerate())
    host = LocalFunctionsHost(small, env={}, host_json=_host_json(tmp_path)).start()
    port = host.port
    host.wait_for_invocations("at_startup")
    assert started == [False]
    assert _call("GET", f"{host.http_url}/api/ping")[2] == b"pong"
    host.stop()
    host.stop()
    assert set(threading.enumerate()) <= before
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    assert [(i.function_name, i.succeeded) for i in host.invocations] == [
        ("at_startup", True),
        ("ping", True),
    ]
