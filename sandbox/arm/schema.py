"""Request bodies checked and trimmed the way ARM and AKS do, driven by the SDK's own models.

The azure-mgmt-containerservice models are generated from the Microsoft.ContainerService
2026-08-01 TypeSpec: each field carries its wire name, its visibility ("read" only: read-only;
no "read": write-only, e.g. `servicePrincipalProfile.secret`, `windowsProfile.adminPassword`;
"read"+"create" only: create-only, e.g. `location`) and its type, with enums as `_enums` classes.
From those: unknown and read-only properties are dropped from a PUT (ARM ignores them), an enum
value outside the spec's values is refused with AKS's `InvalidParameter` (message shape from
AKS, e.g. "The value of parameter agentPoolProfile.name is invalid.", Azure/AKS#3300), a changed
create-only property is refused, and write-only properties never appear in a response.
"""

from __future__ import annotations

import enum
import functools
import re
import typing
from typing import Any

from azure.mgmt.containerservice import models as cs_models
from azure.mgmt.containerservice._utils.model_base import Model as SdkModel
from azure.mgmt.containerservice.models import _models as cs_model_module

from sandbox.arm.model import ArmError

API_VERSIONS = frozenset({"2026-06-01", "2026-08-01"})
"""Stable Microsoft.ContainerService api-versions the clients here speak:
azure-mgmt-containerservice 41.8 (the app, 2026-08-01) and 41.6 (azure-cli 2.91, 2026-06-01)."""

AGENT_POOL_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
"""Spec 2026-08-01 parameter `agentPoolName` pattern (AKS naming rules, aka.ms/aks-naming-rules)."""
CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$")
"""Spec 2026-08-01 parameter `resourceName` pattern for managed clusters."""

_NAMESPACE = {**vars(cs_model_module), "_models": cs_models}


@functools.cache
def _fields(model: type) -> dict[str, tuple[frozenset[str], Any]]:
    """Wire name -> (visibility, type) for one SDK model class."""
    model()  # the generated base fills `_attr_to_rest_field` on first construction
    hints = typing.get_type_hints(model, _NAMESPACE)
    fields: dict[str, tuple[frozenset[str], Any]] = {}
    for attr, rest in model._attr_to_rest_field.items():  # type: ignore[attr-defined]
        fields[rest._rest_name] = (frozenset(rest._visibility or ()), hints.get(attr))
    return fields


def _unwrap(hint: Any) -> tuple[type[enum.Enum] | None, type | None, Any]:
    """(enum class, model class, element hint of a list/dict) inside an Optional/Union hint."""
    args = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
    enum_type = next((a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)), None)
    model = next((a for a in args if isinstance(a, type) and issubclass(a, SdkModel)), None)
    element = None
    for arg in args:
        origin = typing.get_origin(arg)
        if origin is list:
            element = ("list", typing.get_args(arg)[0])
        elif origin is dict:
            element = ("dict", typing.get_args(arg)[1])
    return enum_type, model, element


def _invalid(path: str, detail: str = "") -> ArmError:
    message = f"The value of parameter {path} is invalid." + (f" {detail}" if detail else "")
    return ArmError(400, "InvalidParameter", message, target=path)


def clean(value: Any, model: type, path: str) -> Any:
    """The body as the server keeps it: unknown and read-only properties dropped, enums checked
    (and spelled as the spec spells them: AKS matches enum values case-insensitively)."""
    if not isinstance(value, dict):
        raise _invalid(path, "An object is expected.")
    fields = _fields(model)
    kept: dict[str, Any] = {}
    for name, item in value.items():
        if name not in fields or fields[name][0] == frozenset({"read"}) or item is None:
            continue
        kept[name] = _clean_value(item, fields[name][1], f"{path}.{name}")
    return kept


def _clean_value(item: Any, hint: Any, path: str) -> Any:
    enum_type, model, element = _unwrap(hint)
    if model is not None:
        return clean(item, model, path)
    if enum_type is not None:
        allowed = {str(member.value).lower(): str(member.value) for member in enum_type}
        if not isinstance(item, str) or item.lower() not in allowed:
            values = ", ".join(sorted(set(allowed.values())))
            raise _invalid(path, f"Allowed values are: {values}.")
        return allowed[item.lower()]
    if element is not None:
        kind, inner = element
        if kind == "list" and isinstance(item, list):
            return [_clean_value(x, inner, f"{path}[{i}]") for i, x in enumerate(item)]
        if kind == "dict" and isinstance(item, dict):
            return {k: _clean_value(v, inner, f"{path}.{k}") for k, v in item.items()}
        raise _invalid(path, f"A{'n array' if kind == 'list' else 'n object'} is expected.")
    return item


def without_write_only(value: Any, model: type) -> Any:
    """A response body with every write-only property (secrets) removed."""
    if not isinstance(value, dict):
        return value
    fields = _fields(model)
    shown: dict[str, Any] = {}
    for name, item in value.items():
        if name not in fields:
            shown[name] = item
            continue
        visibility, hint = fields[name]
        if "read" not in visibility:
            continue
        _, inner_model, element = _unwrap(hint)
        if inner_model is not None:
            item = without_write_only(item, inner_model)
        elif element is not None and isinstance(item, list):
            _, inner_model, _ = _unwrap(element[1])
            if inner_model is not None:
                item = [without_write_only(x, inner_model) for x in item]
        shown[name] = item
    return shown


def create_only(model: type) -> frozenset[str]:
    """Top-level wire names that can be set on create and never changed (e.g. `location`)."""
    return frozenset(name for name, (vis, _) in _fields(model).items() if vis == {"read", "create"})


def check_api_version(query: dict[str, str]) -> None:
    """ARM refuses an api-version the resource type does not offer."""
    version = query.get("api-version", "")
    if version not in API_VERSIONS:
        supported = ", ".join(f"'{v}'" for v in sorted(API_VERSIONS))
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are {supported}.",
        )
