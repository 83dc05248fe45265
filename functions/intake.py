"""The front doors: a Storage queue, a Service Bus queue and HTTP, all into one intake.

Valid input starts the orchestration with instance id = request id, once: a request id that
already has an instance, in whatever state, is a duplicate and starts nothing. Invalid input is
answered (a `rejected` event, or a 400) and never retried. Only infrastructure failures raise,
so the host retries them and, past maxDequeueCount, parks the message in the poison queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.durable_functions as df
import azure.functions as func

from functions.http import json_response, misconfigured, refused
from functions.registry import CANCEL_EVENT, ORCHESTRATOR
from shared.runtime_status import ACTIVE

if TYPE_CHECKING:  # the models load on the first message, not at app start
    from azure.durable_functions.models.DurableOrchestrationStatus import (
        DurableOrchestrationStatus,
    )

    from shared.events import Outcome
    from shared.intake import Source
    from shared.request import ProvisionRequest

bp = df.Blueprint()
log = logging.getLogger(__name__)

REQUESTS_QUEUE = "provisioning-requests"
"""The Storage queue and the Service Bus queue requests arrive on (same name on both)."""


class RejectedMessage(Exception):
    """Raised after the `rejected` event of a Service Bus message, so the message is not
    completed: the queue dead-letters it once its delivery count is spent. The topic drops the
    repeated `rejected` events (same event id)."""


@bp.queue_trigger(arg_name="message", queue_name=REQUESTS_QUEUE, connection="AzureWebJobsStorage")
@bp.durable_client_input(client_name="client")
async def request_from_storage_queue(
    message: func.QueueMessage, client: df.DurableOrchestrationClient
) -> None:
    await _intake(message.get_body(), message.id or "unidentified", "storage-queue", client)


@bp.service_bus_queue_trigger(
    arg_name="message", queue_name=REQUESTS_QUEUE, connection="ServiceBusConnection"
)
@bp.durable_client_input(client_name="client")
async def request_from_service_bus(
    message: func.ServiceBusMessage, client: df.DurableOrchestrationClient
) -> None:
    # The SDKs give every message an id; a sender may still leave it empty
    message_id = message.message_id or f"sequence-{message.sequence_number}"
    accepted = await _intake(message.get_body(), message_id, "service-bus", client)
    if not accepted:
        raise RejectedMessage(
            f"message {message.message_id} is not a valid request (its rejected event says why)"
        )


async def _intake(
    raw: bytes, message_id: str, source: Source, client: df.DurableOrchestrationClient
) -> bool:
    """Accept (start once, publish `accepted`) or reject (publish `rejected`). False: rejected."""
    from shared.intake import read_request, rejected_outcome
    from shared.request import ProvisionRequest
    from shared.settings import current_settings

    found = read_request(raw, current_settings(), message_id)
    if isinstance(found, ProvisionRequest):
        await start_once(client, found, source)
        return True
    if found.claimed_id is not None and await _has_run(client, found.claimed_id):
        found = found.under_message_id()  # never into the stream of a run it is not part of
    log.warning("%s: rejected message %s from the %s: %d problem(s); nothing started",
                found.request_id, message_id, source, len(found.problems))  # fmt: skip
    await _publish(rejected_outcome(found, source, datetime.now(UTC)))
    return False


async def _has_run(client: df.DurableOrchestrationClient, request_id: str) -> bool:
    return (await client.get_status(request_id)).runtime_status is not None


async def start_once(
    client: df.DurableOrchestrationClient, request: ProvisionRequest, source: Source
) -> bool:
    """Start the request's orchestration unless its id already has one. True: started now.

    `accepted` is published before the start, so a retry after a failed start publishes the same
    event id again (dropped by the topic's duplicate detection) and never a second run.
    """
    from shared.durations import learned_options
    from shared.intake import accepted_outcome, run_input

    request_id = request.request_id
    existing = await client.get_status(request_id)
    if existing.runtime_status is not None:
        log.info("%s: duplicate from the %s: already submitted (its run is %s); nothing started",
                 request_id, source, existing.runtime_status.value)  # fmt: skip
        return False
    await _publish(accepted_outcome(request, source, datetime.now(UTC)))
    options = await asyncio.to_thread(learned_options, os.environ, request)
    try:
        await client.start_new(ORCHESTRATOR, request_id, run_input(request, options))
    except Exception:
        # Another delivery of the same request started it first (the extension refuses to
        # replace a running instance); anything else is raised for the host to retry.
        if (await client.get_status(request_id)).runtime_status is not None:
            log.info("%s: duplicate: another delivery started it; nothing started", request_id)
            return False
        raise
    log.info("%s: accepted from the %s; its run started", request_id, source)
    return True


async def _publish(outcome: Outcome) -> None:
    """Send an event without blocking the worker's event loop (the SDK sender is blocking)."""
    from shared.events import event_publisher
    from shared.settings import current_settings

    await asyncio.to_thread(event_publisher(current_settings()).publish, outcome)


# -- HTTP -----------------------------------------------------------------------------------------


@bp.route(route="requests", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def submit_request(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """202 with the status and cancel URLs; 400 with every problem; 409 for a known id."""
    from shared.intake import Rejection, read_request
    from shared.settings import SettingsError, current_settings

    try:
        found = read_request(req.get_body(), current_settings(), "http")
    except SettingsError as exc:
        return misconfigured(exc)
    if isinstance(found, Rejection):
        return refused(found.problems)
    links = _links(req, found.request_id)
    if not await start_once(client, found, "http"):
        status = await client.get_status(found.request_id)
        state = status.runtime_status.value if status.runtime_status else "unknown"
        message = f"request {found.request_id} was already submitted; its run is {state}"
        body = {"requestId": found.request_id, "runtimeStatus": state, "message": message}
        return json_response({**body, **links}, 409)
    return json_response(
        {"requestId": found.request_id, "runtimeStatus": "Pending", **links},
        202,
        headers={"Location": links["statusUri"]},
    )


@bp.route(route="requests/{id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def request_status(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """The run's state, its current step, the step outcomes so far and, once over, its result."""
    run = await _run(req, client)
    if isinstance(run, func.HttpResponse):
        return run
    request_id, state, status = run
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    result = None if state in ACTIVE else status.output
    outcome, message = _outcome(state, result)
    return json_response(
        {
            "requestId": request_id,
            "outcome": outcome,
            "message": message,
            "runtimeStatus": state,
            "step": custom.get("step"),
            "stepStatus": custom.get("status"),
            "events": custom.get("events", []),
            "createdTime": _iso(status.created_time),
            "lastUpdatedTime": _iso(status.last_updated_time),
            "result": result,
        },
        200,
    )


def _outcome(state: str, result: Any) -> tuple[str, str]:
    """The request's outcome in one word and one line. A failed request's orchestration still
    ends `Completed` (it ran its cleanup and said why), so runtimeStatus alone misleads."""
    if state in ACTIVE:
        return "running", f"the run is under way (runtimeStatus {state})"
    status = result.get("status") if isinstance(result, dict) else None
    if status == "completed":
        return "completed", "the request completed"
    if status == "failed":
        where = result.get("failedStep") or "a step"
        return "failed", (
            f"the request failed at {where}: {result.get('message', '')} (runtimeStatus "
            f"{state} is the orchestration's: it finished its work, cleanup included)"
        )
    return state.lower(), f"the orchestration ended {state} without a result"


@bp.route(route="requests/{id}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def cancel_request(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """202: the run stops its current step and cleans up; 409 when it is already over."""
    run = await _run(req, client)
    if isinstance(run, func.HttpResponse):
        return run
    request_id, state, _ = run
    if state not in ACTIVE:
        message = f"request {request_id} is already over ({state}); nothing to cancel"
        return json_response(
            {"requestId": request_id, "runtimeStatus": state, "message": message}, 409
        )
    await client.raise_event(request_id, CANCEL_EVENT, None)
    message = "cancel sent: the run stops its current step, cleans up and ends failed"
    return json_response(
        {"requestId": request_id, "message": message, **_links(req, request_id)}, 202
    )


def _links(req: func.HttpRequest, request_id: str) -> dict[str, str]:
    """This app's own URLs for the request (no key in them: the caller has its own)."""
    base = req.url.split("/api/", 1)[0]
    return {
        "statusUri": f"{base}/api/requests/{request_id}",
        "cancelUri": f"{base}/api/requests/{request_id}/cancel",
    }


async def _run(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> tuple[str, str, DurableOrchestrationStatus] | func.HttpResponse:
    """The route's request id, its run's runtime status and the whole status; 404 when no run
    has that id."""
    request_id = req.route_params.get("id", "")
    status = await client.get_status(request_id)
    if status.runtime_status is None:
        message = f"no request with id {request_id!r}: check the id returned when it was submitted"
        return json_response({"requestId": request_id, "message": message}, 404)
    return request_id, status.runtime_status.value, status


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
