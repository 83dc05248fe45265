"""The broker's entities, read from a `Config.json` in the format of Microsoft's SB emulator.

Keeping the topology in the emulator's format means a machine with Docker can swap in the official
emulator with the same file. Fields the emulator accepts but this broker cannot honour (SQL
filters other than `1=1`, rule actions) are refused at load with the entity and field named,
rather than silently ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class TopologyError(ValueError):
    """The Config.json cannot be served; the message names the entity and the field."""


# ISO 8601 durations as the emulator writes them (PT1M, PT10M, P1D, PT0.5S).
_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)

# The emulator's defaults where a property is left out.
DEFAULT_LOCK_DURATION = 60.0
DEFAULT_MAX_DELIVERY_COUNT = 10
DEFAULT_MESSAGE_TTL = 3600.0
DEFAULT_DUPLICATE_WINDOW = 600.0

# CorrelationFilter field → the message property it compares (names as in proton.Message).
CORRELATION_FIELDS = {
    "CorrelationId": "correlation_id",
    "MessageId": "id",
    "Label": "subject",
    "ContentType": "content_type",
    "To": "address",
    "ReplyTo": "reply_to",
    "SessionId": "group_id",
    "ReplyToSessionId": "reply_to_group_id",
}


def parse_duration(text: str, where: str) -> float:
    """Seconds in an ISO 8601 duration such as `PT1M`; `where` names the field in errors."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise TopologyError(f"{where}: {text!r} is not an ISO 8601 duration such as 'PT1M'")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return (
        parts.get("days", 0.0) * 86400
        + parts.get("hours", 0.0) * 3600
        + parts.get("minutes", 0.0) * 60
        + parts.get("seconds", 0.0)
    )


DEFAULT_RULE = "$Default"
"""The rule every subscription starts with: a TrueFilter unless replaced."""


@dataclass(frozen=True)
class CorrelationFilter:
    """Every given system property and application property must equal the message's."""

    system: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """A subscription rule; `filter` None is the TrueFilter (`1=1`): every message matches."""

    name: str
    filter: CorrelationFilter | None


@dataclass(frozen=True)
class EntitySettings:
    """Behaviour of a queue or subscription (the places messages are received from)."""

    lock_duration: float = DEFAULT_LOCK_DURATION
    max_delivery_count: int = DEFAULT_MAX_DELIVERY_COUNT
    default_ttl: float = DEFAULT_MESSAGE_TTL
    dead_letter_on_expiration: bool = False
    forward_to: str = ""
    forward_dead_letters_to: str = ""
    requires_session: bool = False


@dataclass(frozen=True)
class Queue:
    name: str
    settings: EntitySettings
    requires_duplicate_detection: bool = False
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW


@dataclass(frozen=True)
class Subscription:
    name: str
    settings: EntitySettings
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Topic:
    name: str
    subscriptions: tuple[Subscription, ...]
    requires_duplicate_detection: bool = False
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW
    default_ttl: float = DEFAULT_MESSAGE_TTL


@dataclass(frozen=True)
class Topology:
    namespace: str
    queues: tuple[Queue, ...]
    topics: tuple[Topic, ...]


def load_topology(config: Mapping[str, Any] | Path) -> Topology:
    """Read and check a Config.json (a path or the parsed document)."""
    if isinstance(config, Path):
        try:
            document = json.loads(config.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise TopologyError(f"{config}: not valid JSON ({error})") from error
    else:
        document = config
    user_config = _mapping(document, "UserConfig", "Config.json")
    namespaces = user_config.get("Namespaces")
    if not isinstance(namespaces, list) or len(namespaces) != 1:
        raise TopologyError("UserConfig.Namespaces: exactly one namespace is required")
    namespace = namespaces[0]
    if not isinstance(namespace, dict):
        raise TopologyError("UserConfig.Namespaces[0]: must be an object")
    ns_name = _name(namespace, "UserConfig.Namespaces[0]")
    where = f"Namespace {ns_name!r}"
    queues = tuple(
        _queue(item, f"{where} Queues[{index}]")
        for index, item in enumerate(_list(namespace, "Queues", where))
    )
    topics = tuple(
        _topic(item, f"{where} Topics[{index}]")
        for index, item in enumerate(_list(namespace, "Topics", where))
    )
    topology = Topology(namespace=ns_name, queues=queues, topics=topics)
    _check_names(topology)
    return topology


def _queue(raw: Any, where: str) -> Queue:
    if not isinstance(raw, dict):
        raise TopologyError(f"{where}: must be an object")
    name = _name(raw, where)
    where = f"Queue {name!r}"
    props = _mapping(raw, "Properties", where, required=False)
    return Queue(
        name=name,
        settings=_settings(props, where),
        requires_duplicate_detection=_bool(props, "RequiresDuplicateDetection", where, False),
        duplicate_window=_duration(
            props, "DuplicateDetectionHistoryTimeWindow", where, DEFAULT_DUPLICATE_WINDOW
        ),
    )


def _topic(raw: Any, where: str) -> Topic:
    if not isinstance(raw, dict):
        raise TopologyError(f"{where}: must be an object")
    name = _name(raw, where)
    where = f"Topic {name!r}"
    props = _mapping(raw, "Properties", where, required=False)
    subscriptions = tuple(
        _subscription(item, f"{where} Subscriptions[{index}]", name)
        for index, item in enumerate(_list(raw, "Subscriptions", where))
    )
    return Topic(
        name=name,
        subscriptions=subscriptions,
        requires_duplicate_detection=_bool(props, "RequiresDuplicateDetection", where, False),
        duplicate_window=_duration(
            props, "DuplicateDetectionHistoryTimeWindow", where, DEFAULT_DUPLICATE_WINDOW
        ),
        default_ttl=_duration(props, "DefaultMessageTimeToLive", where, DEFAULT_MESSAGE_TTL),
    )


def _subscription(raw: Any, where: str, topic: str) -> Subscription:
    if not isinstance(raw, dict):
        raise TopologyError(f"{where}: must be an object")
    name = _name(raw, where)
    where = f"Subscription {topic}/{name!r}"
    props = _mapping(raw, "Properties", where, required=False)
    rules = tuple(
        _rule(item, f"{where} Rules[{index}]")
        for index, item in enumerate(_list(raw, "Rules", where))
    )
    if not any(rule.name.lower() == DEFAULT_RULE.lower() for rule in rules):
        # As through Resource Manager: every subscription is created with the rule `$Default`
        # (TrueFilter) and adding rules does not remove it (pulumi-azure-native#4489, #4799:
        # "Azure automatically creates a `$Default` rule (TrueFilter) alongside every
        # ServiceBus subscription"; terraform-provider-azurerm#32452 deletes it explicitly;
        # .NET CreateRuleOptions.DefaultRuleName: "Whenever a new subscription is created, a
        # default rule is always added ... a TrueRuleFilter"; azure-sdk-for-java#37856).
        # A rule named `$Default` here replaces it, as a PUT of that rule does on Azure.
        rules = (Rule(DEFAULT_RULE, None), *rules)
    return Subscription(name=name, settings=_settings(props, where), rules=rules)


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise TopologyError(f"{where}: must be an object")
    # `$Default` is the one `$` name a rule may have: it replaces the subscription's first rule.
    name = DEFAULT_RULE if raw.get("Name") == DEFAULT_RULE else _name(raw, where)
    where = f"{where.rsplit(' Rules[', 1)[0]} rule {name!r}"
    props = _mapping(raw, "Properties", where)
    if "Action" in props:
        raise TopologyError(f"{where}.Properties.Action: rule actions are not supported")
    filter_type = props.get("FilterType")
    if filter_type == "Correlation":
        spec = _mapping(props, "CorrelationFilter", f"{where}.Properties")
        unknown = set(spec) - set(CORRELATION_FIELDS) - {"Properties"}
        if unknown:
            raise TopologyError(
                f"{where}.Properties.CorrelationFilter: unknown field(s) {sorted(unknown)}; "
                f"expected some of {[*CORRELATION_FIELDS, 'Properties']}"
            )
        system = {}
        for key, value in spec.items():
            if key == "Properties":
                continue
            if not isinstance(value, str):
                raise TopologyError(f"{where}.Properties.CorrelationFilter.{key}: must be a string")
            system[CORRELATION_FIELDS[key]] = value
        properties = _mapping(
            spec, "Properties", f"{where}.Properties.CorrelationFilter", required=False
        )
        if not system and not properties:
            raise TopologyError(
                f"{where}.Properties.CorrelationFilter: at least one field must be set"
            )
        return Rule(name, CorrelationFilter(system=system, properties=dict(properties)))
    if filter_type == "Sql":
        expression = _mapping(props, "SqlFilter", f"{where}.Properties").get("SqlExpression")
        if isinstance(expression, str) and expression.replace(" ", "") == "1=1":
            return Rule(name, None)
        raise TopologyError(
            f"{where}.Properties.SqlFilter.SqlExpression: SQL filters are not supported by the "
            f"local broker (only '1=1'); use a Correlation filter instead (got {expression!r})"
        )
    raise TopologyError(
        f"{where}.Properties.FilterType: expected 'Correlation' or 'Sql', got {filter_type!r}"
    )


def _settings(props: Mapping[str, Any], where: str) -> EntitySettings:
    max_delivery = props.get("MaxDeliveryCount", DEFAULT_MAX_DELIVERY_COUNT)
    if isinstance(max_delivery, bool) or not isinstance(max_delivery, int) or max_delivery < 1:
        raise TopologyError(
            f"{where}.Properties.MaxDeliveryCount: must be a positive integer, got {max_delivery!r}"
        )
    lock_duration = _duration(props, "LockDuration", where, DEFAULT_LOCK_DURATION)
    if not 0 < lock_duration <= 300:
        raise TopologyError(
            f"{where}.Properties.LockDuration: must be more than 0 and at most PT5M"
        )
    return EntitySettings(
        lock_duration=lock_duration,
        max_delivery_count=max_delivery,
        default_ttl=_duration(props, "DefaultMessageTimeToLive", where, DEFAULT_MESSAGE_TTL),
        dead_letter_on_expiration=_bool(props, "DeadLetteringOnMessageExpiration", where, False),
        forward_to=_string(props, "ForwardTo", where),
        forward_dead_letters_to=_string(props, "ForwardDeadLetteredMessagesTo", where),
        requires_session=_bool(props, "RequiresSession", where, False),
    )


def _check_names(topology: Topology) -> None:
    """Queue and topic names share one namespace; forwarding must point at a queue or topic."""
    seen: set[str] = set()
    for name in [q.name for q in topology.queues] + [t.name for t in topology.topics]:
        if name.lower() in seen:
            raise TopologyError(f"Entity {name!r}: the name is used twice in the namespace")
        seen.add(name.lower())
    for topic in topology.topics:
        subs: set[str] = set()
        for sub in topic.subscriptions:
            if sub.name.lower() in subs:
                raise TopologyError(f"Subscription {topic.name}/{sub.name!r}: defined twice")
            subs.add(sub.name.lower())
    entities = [(f"Queue {q.name!r}", q.settings) for q in topology.queues] + [
        (f"Subscription {t.name}/{s.name!r}", s.settings)
        for t in topology.topics
        for s in t.subscriptions
    ]
    for where, settings in entities:
        for key, target in (
            ("ForwardTo", settings.forward_to),
            ("ForwardDeadLetteredMessagesTo", settings.forward_dead_letters_to),
        ):
            if target and target.lower() not in seen:
                raise TopologyError(
                    f"{where}.Properties.{key}: {target!r} is not a queue or topic of the namespace"
                )


def _mapping(raw: Mapping[str, Any], key: str, where: str, required: bool = True) -> dict:
    value = raw.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise TopologyError(f"{where}.{key}: must be an object")
    return value


def _list(raw: Mapping[str, Any], key: str, where: str) -> list:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise TopologyError(f"{where}.{key}: must be a list")
    return value


def _name(raw: Mapping[str, Any], where: str) -> str:
    name = raw.get("Name")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("$"):
        raise TopologyError(f"{where}.Name: must be a non-empty name without '/', got {name!r}")
    return name


def _bool(props: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = props.get(key, default)
    if not isinstance(value, bool):
        raise TopologyError(f"{where}.Properties.{key}: must be true or false, got {value!r}")
    return value


def _string(props: Mapping[str, Any], key: str, where: str) -> str:
    value = props.get(key, "")
    if not isinstance(value, str):
        raise TopologyError(f"{where}.Properties.{key}: must be a string, got {value!r}")
    return value


def _duration(props: Mapping[str, Any], key: str, where: str, default: float) -> float:
    if key not in props:
        return default
    return parse_duration(props[key], f"{where}.Properties.{key}")
