"""Azure and Kubernetes naming rules, checked before anything reaches ARM so errors name the fix."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

_REQUEST_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
_SUBSCRIPTION_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_RESOURCE_GROUP = re.compile(r"[-\w._()]{1,90}")
_LOCATION = re.compile(r"[a-z][a-z0-9]{1,39}")
_CLUSTER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_LINUX_POOL = re.compile(r"[a-z][a-z0-9]{0,11}")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(
    r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
)
_LABEL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?")
_K8S_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")
_VM_SIZE = re.compile(r"[Ss][Tt][Aa][Nn][Dd][Aa][Rr][Dd]_[A-Za-z0-9_]{2,60}")
_FEATURE_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9.]*")
_FEATURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{0,1024}")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]{0,254}")
_IMAGE = re.compile(
    r"(?:[a-z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
_TAINT = re.compile(r"(?P<key>[^=:]+)(?:=(?P<value>[^:]*))?:(?P<effect>[A-Za-z]+)")

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
AKS_RESERVED_PREFIX = "kubernetes.azure.com/"
NODE_RESOURCE_GROUP_MAX = 80


class _Checked:
    """Validates a string against `pattern` with a message that states the rule, and publishes the
    pattern in the JSON Schema so editors can check requests before they are sent."""

    def __init__(self, pattern: re.Pattern[str], rule: str, *, echo: bool = True) -> None:
        self.pattern, self.rule, self.echo = pattern, rule, echo

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = "^" + self.pattern.pattern.replace("(?P<", "(?<") + "$"
        return json_schema

    def _validate(self, value: str) -> str:
        if not self.pattern.fullmatch(value):
            shown = f"{value!r} is not valid" if self.echo else "not valid"
            raise ValueError(f"{shown}: {self.rule}")
        return value


_check = _Checked


def _lowered(value: str) -> str:
    return value.lower()


def _location(value: str) -> str:
    """Accept the display name too ("East US") and return the ARM name ("eastus")."""
    normalised = value.replace(" ", "").lower()
    if not _LOCATION.fullmatch(normalised):
        raise ValueError(
            f"{value!r} is not an Azure location name: use the short name, e.g. 'eastus' "
            "(`az account list-locations -o table` lists them)"
        )
    return normalised


def _resource_group(value: str) -> str:
    if not _RESOURCE_GROUP.fullmatch(value) or value.endswith("."):
        raise ValueError(
            f"{value!r} is not a valid resource group name: 1-90 letters, digits, '_', '-', '.', "
            "'(' or ')', not ending in '.'"
        )
    return value


def qualified_name_problem(key: str) -> str | None:
    """Why a Kubernetes label or taint key is invalid, or None when it is valid."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return f"the prefix {prefix!r} must be a lowercase DNS subdomain of at most 253 characters"
    if not _LABEL_NAME.fullmatch(name):
        return (
            f"the name {name!r} must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    if key.startswith(AKS_RESERVED_PREFIX):
        return f"keys under {AKS_RESERVED_PREFIX!r} are reserved for AKS"
    return None


def _label_key(value: str) -> str:
    problem = qualified_name_problem(value)
    if problem:
        raise ValueError(f"label key {value!r} is not valid: {problem}")
    return value


def _taint(value: str) -> str:
    match = _TAINT.fullmatch(value)
    if not match:
        raise ValueError(
            f"taint {value!r} is not valid: write it as key=value:Effect or key:Effect, "
            "e.g. 'sku=gpu:NoSchedule'"
        )
    key, taint_value, effect = match["key"], match["value"] or "", match["effect"]
    problem = qualified_name_problem(key)
    if problem:
        raise ValueError(f"taint {value!r} has an invalid key: {problem}")
    if not _LABEL_VALUE.fullmatch(taint_value):
        raise ValueError(
            f"taint {value!r} has an invalid value: at most 63 letters, digits, '-', '_' or '.'"
        )
    if effect not in TAINT_EFFECTS:
        raise ValueError(
            f"taint {value!r} has an unknown effect {effect!r}: "
            f"use one of {', '.join(TAINT_EFFECTS)}"
        )
    return value


RequestId = Annotated[
    str,
    _check(
        _REQUEST_ID,
        "1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit "
        "(it becomes the Durable instance id and a Kubernetes label value)",
    ),
]
SubscriptionId = Annotated[
    str,
    AfterValidator(_lowered),
    _check(
        _SUBSCRIPTION_ID, "a subscription id is a GUID, e.g. '00000000-0000-0000-0000-000000000000'"
    ),
]
ResourceGroupName = Annotated[str, AfterValidator(_resource_group)]
Location = Annotated[str, AfterValidator(_location)]
ClusterName = Annotated[
    str,
    _check(
        _CLUSTER,
        "AKS cluster names are 1-63 letters, digits, '_' or '-', starting and ending with a "
        "letter or digit",
    ),
]
LinuxPoolName = Annotated[
    str,
    _check(
        _LINUX_POOL,
        "Linux node pool names are 1-12 lowercase letters or digits, starting with a letter",
    ),
]
KubernetesVersion = Annotated[
    str, _check(_K8S_VERSION, "write a Kubernetes version as MAJOR.MINOR or MAJOR.MINOR.PATCH")
]
VmSizeName = Annotated[
    str, _check(_VM_SIZE, "VM sizes look like 'Standard_NC4as_T4_v3' (`az vm list-sizes`)")
]
DnsLabel = Annotated[
    str,
    _check(
        _DNS_LABEL,
        "Kubernetes names are 1-63 lowercase letters, digits or '-', starting and ending with "
        "a letter or digit",
    ),
]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[
    str,
    _check(
        _LABEL_VALUE,
        "label values are at most 63 letters, digits, '-', '_' or '.', starting and ending "
        "with a letter or digit",
    ),
]
Taint = Annotated[str, AfterValidator(_taint)]
FeatureNamespace = Annotated[
    str,
    _check(_FEATURE_NAMESPACE, "a resource provider namespace, e.g. 'Microsoft.ContainerService'"),
]
FeatureName = Annotated[
    str, _check(_FEATURE_NAME, "a preview feature name, e.g. 'ManagedGPUExperiencePreview'")
]
HeaderName = Annotated[str, _check(_HEADER_NAME, "an HTTP header name (letters, digits, '-')")]
HeaderValue = Annotated[
    str,
    _check(
        _HEADER_VALUE, "an HTTP header value: printable ASCII, at most 1024 characters", echo=False
    ),
]
EnvName = Annotated[
    str,
    _check(
        _ENV_NAME,
        "environment variable names are letters, digits, '_', '-' or '.', "
        "not starting with a digit",
    ),
]
ImageReference = Annotated[
    str,
    _check(_IMAGE, "a container image reference, e.g. 'nvcr.io/nvidia/k8s-device-plugin:v0.18.0'"),
]


def node_resource_group(resource_group: str, cluster: str, location: str) -> str:
    """The resource group AKS creates for a cluster's nodes (AKS caps it at 80 characters)."""
    return f"MC_{resource_group}_{cluster}_{location}"
