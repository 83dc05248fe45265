"""Every setting the app reads, in one frozen object built once from the environment.

Functions app settings arrive as environment variables (local.settings.json `Values` locally).
Each field's docstring is its documentation; docs/settings.md is generated from them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from shared.ownership import DEFAULT_OWNER


def _split_list(value: object) -> object:
    """Comma-separated on the environment; blanks dropped so an empty setting means no list."""
    if isinstance(value, str):
        return frozenset(item.strip().lower() for item in value.split(",") if item.strip())
    return value


AllowList = Annotated[frozenset[str], BeforeValidator(_split_list)]


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


OptionalTime = Annotated[AwareDatetime | None, BeforeValidator(_blank_is_none)]


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message names the setting and the fix."""


class Settings(BaseModel):
    """The provisioner's settings. An empty allow-list allows everything."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    allowed_subscriptions: AllowList = Field(
        default=frozenset(), alias="GPUPROV_ALLOWED_SUBSCRIPTIONS"
    )
    """Subscription ids requests may target, comma-separated; empty allows any."""
    allowed_resource_groups: AllowList = Field(
        default=frozenset(), alias="GPUPROV_ALLOWED_RESOURCE_GROUPS"
    )
    """Resource group names requests may target, comma-separated; empty allows any."""
    allowed_locations: AllowList = Field(default=frozenset(), alias="GPUPROV_ALLOWED_LOCATIONS")
    """Azure regions requests may target (short names), comma-separated; empty allows any."""
    allowed_vm_sizes: AllowList = Field(default=frozenset(), alias="GPUPROV_ALLOWED_VM_SIZES")
    """GPU VM sizes requests may use, comma-separated; empty allows every current size."""
    max_nodes_per_request: int = Field(default=10, ge=1, alias="GPUPROV_MAX_NODES_PER_REQUEST")
    """Most nodes one request may ask for in its GPU pool."""
    max_gpus_per_request: int = Field(default=16, ge=1, alias="GPUPROV_MAX_GPUS_PER_REQUEST")
    """Most GPUs one request may ask for (nodes × GPUs per VM, for every size it may try)."""
    max_ttl_hours: int = Field(default=168, ge=1, alias="GPUPROV_MAX_TTL_HOURS")
    """Longest time-to-live a request may give what it leaves running."""

    default_budget: float = Field(default=0.0, ge=0, alias="GPUPROV_DEFAULT_BUDGET")
    """Budget (USD) of a request that names none; 0 means none."""
    max_budget: float = Field(default=0.0, ge=0, alias="GPUPROV_MAX_BUDGET")
    """Highest budget (USD) a request may name (the budget when none is named or defaulted)."""
    prices_endpoint: str = Field(
        default="https://prices.azure.com/api/retail/prices", alias="GPUPROV_PRICES_ENDPOINT"
    )
    """Retail Prices API; `snapshot`: the shipped price snapshot (also used when unreachable)."""

    owner: str = Field(default=DEFAULT_OWNER, min_length=1, max_length=63, alias="GPUPROV_OWNER")
    """Value of the `gpuprov-owner` tag on what this deployment creates; it only touches its own."""
    arm_endpoint: str = Field(default="https://management.azure.com", alias="GPUPROV_ARM_ENDPOINT")
    """Azure Resource Manager endpoint (the sandbox's ARM simulator locally)."""
    ca_bundle: str = Field(default="", alias="GPUPROV_CA_BUNDLE")
    """PEM file of extra CAs to trust for ARM (the sandbox's test CA); empty uses the system's."""
    static_token: str = Field(default="", alias="GPUPROV_STATIC_TOKEN", repr=False)
    """Sandbox only: a fixed bearer token instead of DefaultAzureCredential. Never set on Azure."""
    job_log_tail_bytes: int = Field(
        default=16384, ge=1024, le=131072, alias="GPUPROV_JOB_LOG_TAIL_BYTES"
    )
    """Most bytes of the job's pod log kept (its tail); events must fit a Service Bus message."""
    events_topic: str = Field(
        default="gpu-provisioning-events", min_length=1, alias="GPUPROV_EVENTS_TOPIC"
    )
    """Service Bus topic the step events (CloudEvents) are published to."""
    service_bus_connection: str = Field(default="", alias="ServiceBusConnection", repr=False)
    """Service Bus connection string (the local broker's); empty on Azure, which uses identity."""
    service_bus_namespace: str = Field(
        default="", alias="ServiceBusConnection__fullyQualifiedNamespace"
    )
    """Service Bus namespace `<name>.servicebus.windows.net`, reached with the app's identity."""
    reaper_schedule: str = Field(
        default="0 */15 * * * *", min_length=1, alias="GPUPROV_REAPER_SCHEDULE"
    )
    """NCRONTAB schedule (with seconds) of the reaper that deletes expired or orphaned resources."""
    reaper_dry_run: bool = Field(default=False, alias="GPUPROV_REAPER_DRY_RUN")
    """True: the reaper only reports what it would delete; it deletes and publishes nothing."""
    reaper_grace_hours: int = Field(default=2, ge=0, alias="GPUPROV_REAPER_GRACE_HOURS")
    """Hours the reaper waits before deleting an unexpired orphan (its run over, or unknown)."""
    reaper_subscriptions: AllowList = Field(
        default=frozenset(), alias="GPUPROV_REAPER_SUBSCRIPTIONS"
    )
    """Subscriptions the reaper scans besides the allowed ones and those requests named."""
    appinsights_connection: str = Field(default="", alias="APPLICATIONINSIGHTS_CONNECTION_STRING")
    """Application Insights connection string: traces and logs go to Azure Monitor when set."""
    appinsights_authentication: str = Field(
        default="", alias="APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
    )
    """`Authorization=AAD;ClientId=<id>`: telemetry sent with the managed identity, not a key."""
    azure_client_id: str = Field(default="", alias="AZURE_CLIENT_ID")
    """Client id of the user-assigned managed identity DefaultAzureCredential uses on Azure."""
    trace_console: bool = Field(default=False, alias="GPUPROV_TRACE_CONSOLE")
    """True: print traces (a span per step, the ARM and Kubernetes calls) to the console."""
    roles_assigned_at: OptionalTime = Field(default=None, alias="GPUPROV_ROLES_ASSIGNED_AT")
    """When infra/ last assigned the roles; AuthorizationFailed is retried 10 minutes after it."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build from app settings; a bad value raises SettingsError naming the setting."""
        try:
            return cls.model_validate({k: v for k, v in env.items() if k in _ENV_NAMES})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors(include_url=False)
            )
            raise SettingsError(f"invalid app settings: {problems}") from None

    @classmethod
    def documentation(cls) -> list[tuple[str, str, str]]:
        """(setting, default, description) for every setting, in declaration order."""
        rows = []
        for field in cls.model_fields.values():
            assert field.alias is not None
            default = field.default
            if default is None:
                shown = ""
            elif isinstance(default, frozenset):
                shown = ",".join(sorted(default))
            else:
                shown = str(default)
            rows.append((field.alias, shown, field.description or ""))
        return rows


_ENV_NAMES = frozenset(field.alias for field in Settings.model_fields.values() if field.alias)


@functools.cache
def current_settings() -> Settings:
    """The settings of this worker process, read once from its environment."""
    return Settings.from_env(os.environ)
