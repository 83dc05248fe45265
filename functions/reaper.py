"""The timer reaper: on GPUPROV_REAPER_SCHEDULE, delete what this deployment left that is due.

Thin on purpose: the decision and the ARM calls are shared.reaper's; this function only answers
a request id's state from the Durable client (`get_status`, instance id = request id) and logs
the report. The ARM work runs in a worker thread, so the event loop stays free for the client.
"""

import asyncio
import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(schedule="%GPUPROV_REAPER_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def reap_expired(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    from shared.reaper import RequestState, reap, request_state  # SDKs load here, not at start
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

    now = datetime.now(UTC)
    report = await asyncio.to_thread(reap, current_settings(), states, now)
    summary = report.model_dump_json(by_alias=True)
    if report.errors:
        log.error("reaper run (past due: %s) had errors: %s", timer.past_due, summary)
    else:
        log.info("reaper run: %s", summary)
