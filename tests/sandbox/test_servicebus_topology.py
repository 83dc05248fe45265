"""Loading the broker's topology from a Config.json in the Service Bus emulator's format.

Covers: the app's committed Config.json (events topic with its three subscriptions, requests
queue) loads with the intended settings; RequiresSession is read; a bad document fails at load
with an error naming the entity and the field (bad duration, bad count, a non-boolean
RequiresSession, SQL filters, rule actions, unknown filter type or field, dangling ForwardTo,
duplicate names, invalid JSON); the broker refuses to start from a bad document.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.servicebus import CONFIG_PATH, ServiceBusBroker, TopologyError, load_topology
from sandbox.servicebus.topology import CorrelationFilter


def _document(queue: dict[str, Any] | None = None, topic: dict[str, Any] | None = None) -> dict:
    return {
        "UserConfig": {
            "Namespaces": [
                {
                    "Name": "sbemulatorns",
                    "Queues": [queue] if queue else [],
                    "Topics": [topic] if topic else [],
                }
            ],
            "Logging": {"Type": "File"},
        }
    }


def _topic_with_rule(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "Name": "events",
        "Subscriptions": [{"Name": "sub", "Rules": [{"Name": "r", "Properties": properties}]}],
    }


def test_app_config_has_the_events_topic_and_requests_queue() -> None:
    topology = load_topology(CONFIG_PATH)
    (queue,) = topology.queues
    assert (queue.name, queue.settings.max_delivery_count, queue.settings.lock_duration) == (
        "provisioning-requests",
        5,
        60.0,
    )
    (topic,) = topology.topics
    assert topic.name == "gpu-provisioning-events"
    assert (topic.requires_duplicate_detection, topic.duplicate_window) == (True, 600.0)
    filters = {sub.name: [rule.filter for rule in sub.rules] for sub in topic.subscriptions}
    assert filters == {
        "all": [None],
        "failures": [CorrelationFilter(system={}, properties={"status": "failed"})],
        "completed": [CorrelationFilter(system={}, properties={"step": "completed"})],
    }


def test_sessions_are_read_from_requires_session() -> None:
    topology = load_topology(
        _document(queue={"Name": "q", "Properties": {"RequiresSession": True}})
    )
    assert topology.queues[0].settings.requires_session


def test_sql_true_filter_is_accepted() -> None:
    topology = load_topology(
        _document(
            topic=_topic_with_rule({"FilterType": "Sql", "SqlFilter": {"SqlExpression": "1=1"}})
        )
    )
    assert topology.topics[0].subscriptions[0].rules[-1].filter is None


def test_a_rule_beside_default_leaves_its_true_filter_as_arm_does() -> None:
    """pulumi-azure-native#4489/#4799, terraform-provider-azurerm#32452: adding a rule through
    Resource Manager keeps `$Default` (TrueFilter); only a rule named `$Default` replaces it."""
    correlation = {"FilterType": "Correlation", "CorrelationFilter": {"Properties": {"a": "b"}}}
    beside = load_topology(_document(topic=_topic_with_rule(correlation)))
    rules = beside.topics[0].subscriptions[0].rules
    assert [(rule.name, rule.filter) for rule in rules] == [
        ("$Default", None),
        ("r", CorrelationFilter(system={}, properties={"a": "b"})),
    ]
    topic = _topic_with_rule(correlation)
    topic["Subscriptions"][0]["Rules"][0]["Name"] = "$Default"
    (replaced,) = load_topology(_document(topic=topic)).topics[0].subscriptions[0].rules
    assert replaced.name == "$Default"
    assert replaced.filter == CorrelationFilter(system={}, properties={"a": "b"})


BAD = {
    "no-user-config": ({"Namespaces": []}, "Config.json.UserConfig: must be an object"),
    "bad-duration": (
        _document(queue={"Name": "q", "Properties": {"LockDuration": "1 minute"}}),
        "Queue 'q'.Properties.LockDuration: '1 minute' is not an ISO 8601 duration",
    ),
    "zero-max-delivery": (
        _document(queue={"Name": "q", "Properties": {"MaxDeliveryCount": 0}}),
        "Queue 'q'.Properties.MaxDeliveryCount: must be a positive integer",
    ),
    "sessions-not-boolean": (
        _document(queue={"Name": "q", "Properties": {"RequiresSession": "yes"}}),
        "Queue 'q'.Properties.RequiresSession: must be true or false, got 'yes'",
    ),
    "sql-filter": (
        _document(
            topic=_topic_with_rule(
                {"FilterType": "Sql", "SqlFilter": {"SqlExpression": "status = 'failed'"}}
            )
        ),
        "Subscription events/'sub' rule 'r'.Properties.SqlFilter.SqlExpression: SQL filters",
    ),
    "rule-action": (
        _document(
            topic=_topic_with_rule(
                {
                    "FilterType": "Correlation",
                    "CorrelationFilter": {"To": "x"},
                    "Action": {"SqlExpression": "SET sys.To = 'y'"},
                }
            )
        ),
        "rule 'r'.Properties.Action: rule actions are not supported",
    ),
    "unknown-filter-type": (
        _document(topic=_topic_with_rule({"FilterType": "Regex"})),
        "rule 'r'.Properties.FilterType: expected 'Correlation' or 'Sql', got 'Regex'",
    ),
    "unknown-correlation-field": (
        _document(
            topic=_topic_with_rule(
                {"FilterType": "Correlation", "CorrelationFilter": {"Subject": "x"}}
            )
        ),
        "rule 'r'.Properties.CorrelationFilter: unknown field(s) ['Subject']",
    ),
    "dangling-forward": (
        _document(queue={"Name": "q", "Properties": {"ForwardTo": "nowhere"}}),
        "Queue 'q'.Properties.ForwardTo: 'nowhere' is not a queue or topic",
    ),
    "duplicate-name": (
        _document(queue={"Name": "same"}, topic={"Name": "same", "Subscriptions": []}),
        "Entity 'same': the name is used twice",
    ),
}


@pytest.mark.parametrize(("document", "message"), BAD.values(), ids=BAD.keys())
def test_bad_config_names_entity_and_field(document: dict, message: str) -> None:
    with pytest.raises(TopologyError) as raised:
        load_topology(copy.deepcopy(document))
    assert message in str(raised.value)


def test_invalid_json_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "Config.json"
    path.write_text('{"UserConfig": ')
    with pytest.raises(TopologyError, match=r"Config\.json: not valid JSON"):
        load_topology(path)


def test_broker_refuses_a_bad_config(tmp_path: Path) -> None:
    path = tmp_path / "Config.json"
    path.write_text(json.dumps(BAD["sql-filter"][0]))
    with pytest.raises(TopologyError, match="SQL filters are not supported"):
        ServiceBusBroker(path)
