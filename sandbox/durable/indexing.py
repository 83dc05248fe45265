"""Find an app's functions the way the Functions host indexes `function_app.py`.

The host asks the app for its functions (`app.get_functions()`) and sorts them by trigger type;
the local durable host runs orchestrators and activities, and keeps the other triggers listed so
a later host can feed them (queue, HTTP, timer, Service Bus).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"


@dataclass(frozen=True)
class Activity:
    """An activity function and the parameter name its trigger binds the input to."""

    name: str
    function: Callable[..., Any]
    input_parameter: str

    def invoke(self, input_json: str | None) -> str:
        """Run the activity as the Python worker does; returns the result as JSON text.

        The worker decodes the input JSON text into a value (falling back to the raw string
        when it is not JSON) and encodes the return value as JSON, both with the library's
        `ActivityTriggerConverter`; an exception propagates to the caller.
        """
        datum = meta.Datum(type="json", value="null" if input_json is None else input_json)
        value = ActivityTriggerConverter.decode(datum, trigger_metadata=None)
        result = self.function(**{self.input_parameter: value})
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        encoded = ActivityTriggerConverter.encode(result, expected_type=None)
        return str(encoded.value)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


@dataclass(frozen=True)
class FunctionIndex:
    """The app's functions by kind; orchestrators are the library's JSON-in/JSON-out handles."""

    orchestrators: dict[str, Callable[[str], str]] = field(default_factory=dict)
    activities: dict[str, Activity] = field(default_factory=dict)
    entities: dict[str, Callable[..., Any]] = field(default_factory=dict)
    other_triggers: dict[str, str] = field(default_factory=dict)
    """Function name → trigger binding type (`queueTrigger`, `httpTrigger`, ...)."""


def index_app(app: func.FunctionApp) -> FunctionIndex:
    """Index `app` like the Functions host: every function, sorted by its trigger binding."""
    app.functions_bindings = None  # get_functions() refuses to run twice otherwise
    index = FunctionIndex()
    for function in app.get_functions():
        trigger = function.get_trigger()
        name = function.get_function_name()
        if trigger is None or name is None:
            continue
        binding = trigger.get_binding_name()
        user_function = function.get_user_function()
        if binding == ORCHESTRATION_TRIGGER:
            index.orchestrators[name] = user_function
        elif binding == ACTIVITY_TRIGGER:
            index.activities[name] = Activity(name, user_function, trigger.name)
        elif binding == ENTITY_TRIGGER:
            index.entities[name] = user_function
        else:
            index.other_triggers[name] = binding
    return index
