"""What the Functions host reads before it runs anything: host.json and the app settings.

Only the settings the local host acts on are read; the defaults are the Functions host's own
(queues: 5 dequeues, no visibility delay, base64 bodies; HTTP routes under `api/`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STORAGE_CONNECTION = "AzureWebJobsStorage"
_SETTING = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


class FunctionsHostError(RuntimeError):
    """The app cannot run as configured; the message names the function and the setting."""


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, as the Storage queue trigger applies them."""

    batch_size: int = 16
    max_dequeue_count: int = 5
    visibility_timeout_seconds: float = 0.0
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostSettings:
    queues: QueueOptions
    hub_name: str
    route_prefix: str
    function_timeout_seconds: float | None

    @classmethod
    def load(cls, path: Path) -> HostSettings:
        document = json.loads(path.read_text())
        extensions: dict[str, Any] = document.get("extensions", {})
        queues: dict[str, Any] = extensions.get("queues", {})
        encoding = str(queues.get("messageEncoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise FunctionsHostError(
                f"{path}: extensions.queues.messageEncoding is {encoding!r}; "
                "the Functions host knows 'base64' and 'none'"
            )
        timeout = document.get("functionTimeout")
        return cls(
            queues=QueueOptions(
                batch_size=int(queues.get("batchSize", 16)),
                max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
                visibility_timeout_seconds=timespan_seconds(
                    str(queues.get("visibilityTimeout", "00:00:00"))
                ),
                message_encoding=encoding,
            ),
            hub_name=str(extensions.get("durableTask", {}).get("hubName", "TestHubName")),
            route_prefix=str(extensions.get("http", {}).get("routePrefix", "api")).strip("/"),
            function_timeout_seconds=None if timeout is None else timespan_seconds(str(timeout)),
        )


def timespan_seconds(text: str) -> float:
    """Seconds in a .NET TimeSpan string such as `00:00:30` or `1.02:00:00`."""
    match = _TIMESPAN.match(text.strip())
    if match is None:
        raise FunctionsHostError(f"{text!r} is not a TimeSpan (expected [d.]hh:mm:ss)")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86_400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def resolve(value: str, env: Mapping[str, str], function_name: str, what: str) -> str:
    """Replace each `%NAME%` with app setting NAME, as the host does for binding properties."""

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise FunctionsHostError(
                f"function {function_name!r}: app setting {name!r} (used in its {what} "
                f"{value!r}) is not set"
            )
        return env[name]

    return _SETTING.sub(setting, value)


def connection_setting(
    name: str | None, env: Mapping[str, str], function_name: str, default: str | None = None
) -> str:
    """The value of a binding's `connection` setting: NAME, else AzureWebJobsNAME, as the host
    looks them up."""
    setting = name or default
    if not setting:
        raise FunctionsHostError(f"function {function_name!r}: its trigger names no connection")
    for candidate in (setting, f"AzureWebJobs{setting}"):
        if env.get(candidate):
            return env[candidate]
    raise FunctionsHostError(
        f"function {function_name!r}: connection setting {setting!r} is not set "
        f"(nor AzureWebJobs{setting})"
    )
