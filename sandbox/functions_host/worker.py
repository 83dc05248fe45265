"""The Python worker's part: find the app's triggered functions and call them.

Like the Functions Python worker, `async def` functions all run on one event loop (kept in its own
thread for the host's lifetime) and plain functions run in the calling thread. Every call is
recorded as an `Invocation`; a failure is logged with the function name and the exception
message, never the trigger payload (a message body may hold a whole request).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from sandbox.clock import Clock
from sandbox.functions_host.config import FunctionsHostError

log = logging.getLogger(__name__)

QUEUE_TRIGGER = "queueTrigger"
SERVICE_BUS_TRIGGER = "serviceBusTrigger"
TIMER_TRIGGER = "timerTrigger"
HTTP_TRIGGER = "httpTrigger"
DURABLE_CLIENT = "durableClient"
SUPPORTED_TRIGGERS = frozenset({QUEUE_TRIGGER, SERVICE_BUS_TRIGGER, TIMER_TRIGGER, HTTP_TRIGGER})
DURABLE_TRIGGERS = frozenset({"orchestrationTrigger", "activityTrigger", "entityTrigger"})
_HTTP_RETURN = "$return"


@dataclass(frozen=True)
class Invocation:
    """One trigger invocation: `started` on the host's clock (epoch seconds), `seconds` of real
    time the function ran (what Consumption billing counts)."""

    function_name: str
    trigger_type: str
    started: float
    seconds: float
    succeeded: bool


@dataclass(frozen=True)
class FunctionSpec:
    """A triggered function: its trigger binding and the parameters the worker fills."""

    name: str
    trigger_type: str
    trigger: Any
    function: Callable[..., Any]
    trigger_parameter: str
    durable_clients: tuple[Any, ...]
    """The `durableClient` bindings (their `name` is the parameter, `task_hub` the hub)."""

    @property
    def durable_client_parameters(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.durable_clients)


def triggered_functions(app: func.FunctionApp) -> list[FunctionSpec]:
    """The app's non-durable functions, checked as the worker checks them when it loads the app.

    Orchestrators and activities are left to the durable host. A trigger or binding this host
    cannot feed, or a parameter no binding fills, is an error now rather than a silent no-op.
    """
    app.functions_bindings = None  # get_functions() refuses to run twice otherwise
    specs = []
    for function in app.get_functions():
        trigger = function.get_trigger()
        name = function.get_function_name()
        if trigger is None or name is None:
            continue
        trigger_type = trigger.get_binding_name()
        if trigger_type in DURABLE_TRIGGERS:
            continue
        if trigger_type not in SUPPORTED_TRIGGERS:
            raise FunctionsHostError(
                f"function {name!r}: the local Functions host does not run {trigger_type} triggers"
            )
        clients = []
        for binding in function.get_bindings():
            if binding is trigger or (binding.type == "http" and binding.name == _HTTP_RETURN):
                continue
            if binding.type != DURABLE_CLIENT:
                raise FunctionsHostError(
                    f"function {name!r}: the local Functions host does not support its "
                    f"{binding.type} binding {binding.name!r}"
                )
            clients.append(binding)
        user_function = function.get_user_function()
        _check_parameters(name, user_function, {trigger.name, *(b.name for b in clients)})
        specs.append(
            FunctionSpec(name, trigger_type, trigger, user_function, trigger.name, tuple(clients))
        )
    return specs


def _check_parameters(name: str, function: Callable[..., Any], bound: set[str]) -> None:
    parameters = inspect.signature(function).parameters
    unbound = [p for p, info in parameters.items() if p not in bound and info.default is info.empty]
    missing = sorted(bound - set(parameters))
    if unbound or missing:
        raise FunctionsHostError(
            f"function {name!r}: parameters {unbound} have no binding and bindings {missing} "
            "have no parameter"
        )


class InvocationLog:
    """Every invocation, oldest first; appended from trigger threads, read from any thread."""

    def __init__(self) -> None:
        self._records: list[Invocation] = []
        self._recorded = threading.Condition()

    def record(self, spec: FunctionSpec, started: float, seconds: float, succeeded: bool) -> None:
        with self._recorded:
            self._records.append(
                Invocation(spec.name, spec.trigger_type, started, seconds, succeeded)
            )
            self._recorded.notify_all()

    def snapshot(self) -> list[Invocation]:
        with self._recorded:
            return list(self._records)

    def wait_for(
        self, function_name: str, count: int = 1, timeout: float = 10.0
    ) -> list[Invocation]:
        """Block until `function_name` has been invoked `count` times; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._recorded:
            while True:
                mine = [i for i in self._records if i.function_name == function_name]
                if len(mine) >= count:
                    return mine
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{function_name!r} ran {len(mine)} time(s), not {count}, "
                        f"within {timeout} s"
                    )
                self._recorded.wait(remaining)


class Worker:
    """Calls functions and records each call; `start()`/`stop()` own the event loop thread."""

    def __init__(
        self, clock: Clock, timeout_seconds: float | None, invocations: InvocationLog
    ) -> None:
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self.invocations = invocations
        self.durable_client_binding = ""
        """The durable client binding value (JSON text) given to `durableClient` parameters."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="functions-worker-loop", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the durable client's HTTP session, then end the loop and join its thread."""
        thread, loop = self._thread, self._loop
        self._thread = self._loop = None
        if thread is None or loop is None:
            return
        closing = asyncio.run_coroutine_threadsafe(_close_durable_client_session(), loop)
        try:
            closing.result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    # ---- invocations ----------------------------------------------------------------------

    def invoke(self, spec: FunctionSpec, trigger_value: Any) -> tuple[bool, Any]:
        """Call the function with its trigger value; (succeeded, return value or None)."""
        kwargs: dict[str, Any] = {spec.trigger_parameter: trigger_value}
        kwargs.update(dict.fromkeys(spec.durable_client_parameters, self.durable_client_binding))
        started = self.clock.now()
        began = time.perf_counter()
        try:
            result = self._call(spec, kwargs)
        except Exception as exc:
            self.invocations.record(spec, started, time.perf_counter() - began, succeeded=False)
            log.error("function %s failed: %s: %s", spec.name, type(exc).__name__, exc)
            return False, None
        self.invocations.record(spec, started, time.perf_counter() - began, succeeded=True)
        return True, result

    def _call(self, spec: FunctionSpec, kwargs: Mapping[str, Any]) -> Any:
        result = spec.function(**kwargs)
        if not inspect.isawaitable(result):
            return result
        loop = self._loop
        if loop is None:
            raise RuntimeError("the worker is not started")
        future = asyncio.run_coroutine_threadsafe(_awaited(result), loop)
        try:
            return future.result(timeout=self.timeout_seconds)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"timeout value of {self.timeout_seconds:.0f} s was exceeded by function "
                f"{spec.name!r}"
            ) from None


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def _close_durable_client_session() -> None:
    """Close the HTTP session `azure.durable_functions` shares across the process.

    The library keeps one aiohttp session bound to the worker's loop and has no shutdown hook
    (the real worker just exits); a host that stops and starts again needs it closed.
    """
    from azure.durable_functions.models.utils import http_utils

    await http_utils._close_session()
