"""The timer reaper: on GPUPROV_REAPER_SCHEDULE, delete what this deployment left that is due.

Thin on purpose: the decision and the ARM calls are shared.reaper's; this function only answers
a request id's state from the Durable client (`get_status`, instance id = request id), finds the
subscriptions the requests named (each run's input, read once per worker), and logs the report.
The ARM work runs in a worker thread, so the event loop stays free for the client.
"""

import asyncio
import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()
log = logging.getLogger(__name__)

_subscription_of: dict[str, str] = {}
"""Request id → the subscription its run's input names (inputs never change): read once."""


@bp.timer_trigger(schedule="%GPUPROV_REAPER_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def reap_expired(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    from shared.reaper import RequestState, reap, report_line, request_state
    from shared.settings import current_settings

    loop = asyncio.get_running_loop()

    async def state_of(request_id: str) -> RequestState:
        status = await client.get_status(request_id, show_input=True)
        runtime = status.runtime_status
        return request_state(
            None if runtime is None else str(runtime.value),
            status.last_updated_time,
            status.input_,
        )

    def states(request_id: str) -> RequestState:
        return asyncio.run_coroutine_threadsafe(state_of(request_id), loop).result()

    recorded = await _requested_subscriptions(client)
    now = timer_now(timer)
    report = await asyncio.to_thread(reap, current_settings(), states, now, None, recorded)
    if report.errors:
        log.error("%s (past due: %s)", report_line(report), timer.past_due)
    else:
        log.info("%s", report_line(report))


async def _requested_subscriptions(client: df.DurableOrchestrationClient) -> set[str]:
    """The subscriptions of every request the Durable host knows (waiting sub-orchestrations,
    whose ids hold a `:`, left out)."""
    for status in await client.get_status_all():
        request_id = status.instance_id or ""
        if not request_id or ":" in request_id or request_id in _subscription_of:
            continue
        full = await client.get_status(request_id, show_input=True)
        run_input = full.input_ if isinstance(full.input_, dict) else {}
        request = run_input.get("request")
        subscription = request.get("subscriptionId") if isinstance(request, dict) else None
        _subscription_of[request_id] = str(subscription or "")
    return {s for s in _subscription_of.values() if s}


def timer_now(timer: func.TimerRequest) -> datetime:
    """Now: the host's clock as the timer's schedule status reports it (`LastUpdated`) when
    that is later than this machine's — the local host's simulated clock runs ahead, so tags
    written on it come due on it; on Azure it is the real time of the last update, never later."""
    now = datetime.now(UTC)
    status = getattr(timer, "schedule_status", None)  # the worker's TimerRequest has it
    if not isinstance(status, dict):
        return now
    try:
        reported = datetime.fromisoformat(str(status.get("LastUpdated") or ""))
    except ValueError:
        return now
    if reported.tzinfo is None:
        reported = reported.replace(tzinfo=UTC)
    return max(now, reported)
