"""Step events: the contract subscribers rely on, built without a broker.

Covers: event ids (`{requestId}:{step}:{status}`, an attempt suffix from the second attempt) and
types per status and lifecycle step; statuses that do not fit their step refused; the structured
CloudEvents JSON envelope (readable by azure-core's CloudEvent parser) and its data; the Service
Bus message (content type, ids, subject, filter properties); detail keys named like secrets
refused; an outcome surviving history's JSON round trip; the 256 KB cap: a 1 MB log tail (text or
log-tail object, multi-byte text too) cut to its end and marked, long messages cut to their start,
details too big to cut replaced by a note, small events untouched; a publisher with no Service Bus
settings refused with a hint; send errors classified (connection trouble and a busy namespace
transient, a missing topic, a missing role, a refused token or an oversized message permanent,
with hints naming what to fix); the connection string hidden from the settings' repr.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.messaging import CloudEvent
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    MessagingEntityNotFoundError,
    OperationTimeoutError,
    ServiceBusAuthorizationError,
    ServiceBusCommunicationError,
    ServiceBusConnectionError,
    ServiceBusServerBusyError,
)
from pydantic import ValidationError

from shared.errors import StepError, StepErrorWire
from shared.events import (
    CONTENT_TYPE,
    EVENTS_NOT_CONFIGURED,
    LIFECYCLE_STEPS,
    MAX_BODY_BYTES,
    STEPS,
    EventPublisher,
    Outcome,
    build_event,
    classify_send_error,
    encode,
    event_id,
    event_type,
    message_for,
    structured,
)
from shared.settings import Settings

WHEN = datetime(2026, 11, 23, 21, 40, 5, tzinfo=UTC)
MB = 1024 * 1024


def _outcome(**fields: Any) -> Outcome:
    values: dict[str, Any] = {
        "request_id": "req-1",
        "step": "run-job",
        "status": "succeeded",
        "time": WHEN,
    }
    return Outcome(**{**values, **fields})


def _decoded(outcome: Outcome) -> dict[str, Any]:
    body = encode(build_event(outcome, "team-a"))
    assert len(body) <= MAX_BODY_BYTES
    decoded: dict[str, Any] = json.loads(body)
    return decoded


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({}, "req-1:run-job:succeeded", id="first-attempt"),
        pytest.param({"attempt": 2}, "req-1:run-job:succeeded:2", id="second-attempt"),
        pytest.param(
            {"step": "create-node-pool", "status": "failed", "attempt": 3},
            "req-1:create-node-pool:failed:3",
            id="repeated-failure",
        ),
        pytest.param(
            {"step": "completed", "status": "completed"}, "req-1:completed:completed", id="final"
        ),
    ],
)
def test_event_id_names_request_step_status_and_later_attempts(
    fields: dict[str, Any], expected: str
) -> None:
    assert event_id(_outcome(**fields)) == expected


@pytest.mark.parametrize(
    ("step", "status", "expected"),
    [
        pytest.param("verify-gpus", "started", "gpuprovisioner.step.started", id="started"),
        pytest.param("run-job", "succeeded", "gpuprovisioner.step.succeeded", id="succeeded"),
        pytest.param("create-cluster", "failed", "gpuprovisioner.step.failed", id="step-failed"),
        pytest.param("register-features", "skipped", "gpuprovisioner.step.skipped", id="skip"),
        pytest.param("accepted", "accepted", "gpuprovisioner.request.accepted", id="accepted"),
        pytest.param("rejected", "rejected", "gpuprovisioner.request.rejected", id="rejected"),
        pytest.param("completed", "completed", "gpuprovisioner.request.completed", id="done"),
        pytest.param("failed", "failed", "gpuprovisioner.request.failed", id="request-failed"),
        pytest.param("reaped", "reaped", "gpuprovisioner.request.reaped", id="reaped"),
    ],
)
def test_event_type_per_status_and_lifecycle_step(step: str, status: str, expected: str) -> None:
    assert event_type(_outcome(step=step, status=status)) == expected


def test_the_contract_knows_every_step_module_and_the_lifecycle_and_nothing_else() -> None:
    """Each step module (functions/steps/*.py) publishes under its STEP: the contract names
    those and the request's lifecycle steps, each once, and no step nobody publishes."""
    import functions.steps

    declared = {
        importlib.import_module(f"functions.steps.{module.name}").STEP
        for module in pkgutil.iter_modules(functions.steps.__path__)
    }
    assert len(declared) == 8
    assert not declared & LIFECYCLE_STEPS
    assert sorted(STEPS) == sorted(declared | LIFECYCLE_STEPS)


@pytest.mark.parametrize(
    ("step", "status"),
    [
        pytest.param("completed", "succeeded", id="lifecycle-step-with-step-status"),
        pytest.param("run-job", "completed", id="step-with-lifecycle-status"),
        pytest.param("failed", "started", id="final-failure-started"),
        pytest.param("run-job", "running", id="unknown-status"),
        pytest.param("provision", "started", id="unknown-step"),
    ],
)
def test_status_must_fit_the_step(step: str, status: str) -> None:
    with pytest.raises(ValidationError):
        _outcome(step=step, status=status)


def test_structured_envelope_is_a_cloudevent_with_the_outcome_as_data() -> None:
    error = StepErrorWire(
        kind="quota", code="QuotaExceeded", message="no vCPUs left", hint="raise the quota"
    )
    outcome = _outcome(
        step="create-node-pool",
        status="failed",
        message="quota exhausted",
        error=error,
        details={"durations": {"create-node-pool": 12.5}, "vmSize": "Standard_NC4as_T4_v3"},
    )
    envelope = _decoded(outcome)

    assert envelope == {
        "specversion": "1.0",
        "id": "req-1:create-node-pool:failed",
        "source": "/gpuprov/team-a",
        "type": "gpuprovisioner.step.failed",
        "subject": "req-1",
        "time": "2026-11-23T21:40:05Z",
        "datacontenttype": "application/json",
        "data": {
            "step": "create-node-pool",
            "status": "failed",
            "attempt": 1,
            "message": "quota exhausted",
            "errorCode": "QuotaExceeded",
            "error": {
                "kind": "quota",
                "code": "QuotaExceeded",
                "message": "no vCPUs left",
                "hint": "raise the quota",
                "retryAfter": None,
            },
            "details": {"durations": {"create-node-pool": 12.5}, "vmSize": "Standard_NC4as_T4_v3"},
        },
    }
    parsed: CloudEvent[Any] = CloudEvent.from_dict(envelope)
    assert (parsed.id, parsed.source, parsed.type, parsed.subject) == (
        "req-1:create-node-pool:failed",
        "/gpuprov/team-a",
        "gpuprovisioner.step.failed",
        "req-1",
    )
    assert parsed.time == WHEN


def test_event_time_is_sent_in_utc() -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert structured(build_event(_outcome(time=local), "x"))["time"] == "2026-11-23T21:40:05Z"


def test_message_carries_event_id_correlation_and_filter_properties() -> None:
    message = message_for(_outcome(step="verify-gpus", status="failed", attempt=2), "team-a")
    assert message.content_type == CONTENT_TYPE
    assert message.message_id == "req-1:verify-gpus:failed:2"
    assert message.correlation_id == "req-1"
    assert message.subject == "verify-gpus"
    assert message.application_properties == {
        "requestId": "req-1",
        "step": "verify-gpus",
        "status": "failed",
    }
    assert json.loads(b"".join(message.body))["id"] == "req-1:verify-gpus:failed:2"


@pytest.mark.parametrize(
    "details",
    [
        pytest.param({"token": "eyJ0"}, id="token"),
        pytest.param({"cluster": {"kubeconfig": "apiVersion: v1"}}, id="nested-kubeconfig"),
        pytest.param({"headers": [{"Authorization": "Bearer x"}]}, id="in-a-list"),
        pytest.param({"service_bus_connection_string": "Endpoint=sb://"}, id="snake-case"),
    ],
)
def test_details_named_like_secrets_are_refused(details: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="secret"):
        _outcome(details=details)


def test_outcome_survives_historys_json_round_trip() -> None:
    outcome = _outcome(
        attempt=2,
        error=StepError("transient", "ConnectionFailed", "reset").to_wire(),
        details={"left": [{"kind": "cluster", "until": "2026-11-24T21:40:05Z"}]},
    )
    assert Outcome.model_validate(json.loads(outcome.model_dump_json())) == outcome


def test_small_event_is_not_cut() -> None:
    assert "truncated" not in _decoded(_outcome(details={"logTail": "loss 0.1\n"}))["data"]


def test_megabyte_log_tail_keeps_its_end_and_says_so() -> None:
    lines = [f"Accuracy at step {step}: 0.{step:06d}" for step in range(40_000)]
    log = "\n".join(lines)
    assert len(log.encode()) > MB

    envelope = _decoded(_outcome(message="job done", details={"logTail": log, "pod": "p-1"}))

    data = envelope["data"]
    tail = data["details"]["logTail"]
    assert tail["truncated"] is True
    assert tail["originalBytes"] == len(log.encode())
    assert log.endswith(tail["text"])
    assert tail["text"].endswith("Accuracy at step 39999: 0.039999")
    assert len(tail["text"]) > 200 * 1024  # cut to what is needed, not emptied
    assert data["truncated"] == ["details.logTail.text"]
    assert (data["message"], data["details"]["pod"], envelope["id"]) == (
        "job done",
        "p-1",
        "req-1:run-job:succeeded",
    )


def test_log_tail_object_keeps_its_fields_when_cut() -> None:
    log = "é—GPU ready ✓\n" * 100_000  # multi-byte UTF-8
    tail = {"pod": "mnist-x", "text": log, "truncated": False, "bytesRead": 2 * MB}
    data = _decoded(_outcome(details={"logTail": tail}))["data"]
    cut = data["details"]["logTail"]
    assert (cut["pod"], cut["bytesRead"], cut["truncated"]) == ("mnist-x", 2 * MB, True)
    assert cut["originalBytes"] == len(log.encode())
    assert log.endswith(cut["text"])


def test_long_message_keeps_its_start_when_there_is_no_log_to_cut() -> None:
    message = "pool failed: " + "x" * (400 * 1024)
    data = _decoded(_outcome(status="failed", message=message))["data"]
    assert data["message"].startswith("pool failed: xxx")
    assert data["message"].endswith("… [truncated]")
    assert data["truncated"] == ["message"]


def test_details_too_big_to_cut_are_replaced_by_a_note() -> None:
    many = {f"node-{index}": index for index in range(40_000)}
    data = _decoded(_outcome(message="ok", details=many))["data"]
    assert data["details"]["omitted"] is True
    assert data["details"]["originalBytes"] > MAX_BODY_BYTES
    assert data["truncated"] == ["details"]
    assert data["message"] == "ok"


def test_publisher_without_service_bus_settings_says_what_to_set() -> None:
    with pytest.raises(StepError) as raised:
        EventPublisher(Settings.from_env({}))
    assert (raised.value.kind, raised.value.code) == ("permanent", EVENTS_NOT_CONFIGURED)
    assert "ServiceBusConnection" in raised.value.hint


def test_service_bus_settings_are_read_and_the_connection_string_hidden() -> None:
    settings = Settings.from_env(
        {
            "ServiceBusConnection": "Endpoint=sb://x/;SharedAccessKey=hush",
            "GPUPROV_EVENTS_TOPIC": "events",
        }
    )
    assert settings.events_topic == "events"
    assert settings.service_bus_connection.endswith("hush")
    assert "hush" not in repr(settings)
    identity = Settings.from_env(
        {"ServiceBusConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net"}
    )
    assert identity.service_bus_namespace == "ns.servicebus.windows.net"
    assert identity.events_topic == "gpu-provisioning-events"


@pytest.mark.parametrize(
    ("error", "kind", "code", "hint_names"),
    [
        pytest.param(
            ServiceBusConnectionError(message="refused"),
            "transient",
            "ConnectionFailed",
            "",
            id="down",
        ),
        pytest.param(
            ServiceBusCommunicationError(message="dns"),
            "transient",
            "ConnectionFailed",
            "",
            id="dns",
        ),
        pytest.param(
            ServiceBusServerBusyError(message="busy"),
            "transient",
            "ServiceBusServerBusy",
            "",
            id="busy",
        ),
        pytest.param(
            OperationTimeoutError(message="slow"), "transient", "OperationTimeout", "", id="timeout"
        ),
        pytest.param(
            MessagingEntityNotFoundError(message="gone"),
            "permanent",
            "MessagingEntityNotFound",
            "GPUPROV_EVENTS_TOPIC",
            id="no-topic",
        ),
        pytest.param(
            ServiceBusAuthorizationError(message="denied"),
            "permanent",
            "ServiceBusAuthorization",
            "Azure Service Bus Data Sender",
            id="no-role",
        ),
        pytest.param(
            ClientAuthenticationError("no identity"),
            "permanent",
            "ClientAuthentication",
            "managed identity",
            id="no-token",
        ),
        pytest.param(
            MessageSizeExceededError(message="too big"),
            "permanent",
            "MessageSizeExceeded",
            "",
            id="too-big",
        ),
    ],
)
def test_send_errors_are_classified(
    error: AzureError, kind: str, code: str, hint_names: str
) -> None:
    classified = classify_send_error(error, "events")
    assert (classified.kind, classified.code) == (kind, code)
    assert hint_names in classified.hint
