"""Durable entities on the local host: the messages the extension exchanges with them.

An orchestrator's `call_entity` and `signal_entity` (`azure-functions-durable` actions
CallEntity 7 and SignalEntity 9) become an `EventSent` history event whose `EventId` is the
task's sequence number and whose `Input` is the request message; the library then re-keys a
call's task on the request's `id` (TaskOrchestrationExecutor.process_event) and completes it
with the `EventRaised` of that name, whose `Input` is the response message
`{"result": <json>}` (plus `exceptionType` when the operation raised: ResponseMessage.from_dict).
A signal gets no answer. The entity function itself (`df.Entity.create` handle) takes a batch
context `{"self", "state", "exists", "batch"}` and returns `{"entityExists", "entityState",
"results", "signals"}` (Entity.handle, EntityState.to_json). The Python library has no entity
lock API (no `context.lock`), so there are no critical sections to honour.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One operation's effect: the entity's state after it, and its result or error."""

    state: str | None
    is_error: bool
    result: str | None


def entity_name(scheduler_id: str) -> tuple[str, str]:
    """`@counter@k1` → (`counter`, `k1`): the library lower-cases the name in the id."""
    name, _, key = scheduler_id[1:].partition("@")
    return name, key


def request_message(request_id: str, operation: str, input_json: str | None, signal: bool) -> str:
    return json.dumps({"id": request_id, "op": operation, "signal": signal, "input": input_json})


def response_message(outcome: Outcome) -> str:
    response: dict[str, object] = {"result": outcome.result}
    if outcome.is_error:
        response["exceptionType"] = "System.Exception"
    return json.dumps(response)


def run_operation(
    handle: Callable[[str], str],
    scheduler_id: str,
    state: str | None,
    operation: str,
    input_json: str | None,
) -> Outcome:
    """Run one operation as a batch of one, the way the extension invokes the entity."""
    name, key = entity_name(scheduler_id)
    context = {
        "self": {"name": name, "key": key},
        "state": state,
        "exists": state is not None,
        # the operation's input arrives JSON-encoded twice: DurableEntityContext.get_input
        # json.loads it, then decodes the JSON text it finds
        "batch": [{"name": operation, "input": json.dumps(input_json)}],
    }
    raw = json.loads(handle(json.dumps(context)))
    (result,) = raw["results"]
    return Outcome(
        state=raw["entityState"] if raw["entityExists"] else None,
        is_error=bool(result["isError"]),
        result=result["result"],
    )
