"""The `$management` node of a queue or subscription: the request/response operations of the
Service Bus AMQP management protocol, with the bodies the SDKs send and read.

Each operation (application property `operation`) takes the request's map body and answers
`statusCode`, `statusDescription`, a map body and, on failure, `errorCondition` (the SDKs turn
the condition into their error types: `com.microsoft:message-lock-lost`, `...message-not-found`,
`...session-cannot-be-locked`). 204 with no messages is how peek says "nothing more".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from proton import UNDESCRIBED, Array, Data, Described, Message, timestamp, ulong

from sandbox.servicebus.entities import (
    EntityNotFound,
    LockLost,
    MessageNotFound,
    MessageStore,
    Namespace,
    SessionUnavailable,
)
from sandbox.servicebus.topology import CorrelationFilter, Rule

LOCK_LOST = "com.microsoft:message-lock-lost"
MESSAGE_NOT_FOUND = "com.microsoft:message-not-found"
SESSION_CANNOT_BE_LOCKED = "com.microsoft:session-cannot-be-locked"
NOT_FOUND = "amqp:not-found"
NOT_IMPLEMENTED = "amqp:not-implemented"

Answer = tuple[int, str, Any, str | None, set[MessageStore]]
"""statusCode, statusDescription, body, errorCondition, and the stores that gained messages."""
_Reply = tuple[int, Any, set[MessageStore]]


def answer(namespace: Namespace, path: str, request: Message) -> Answer:
    """Carry out one `$management` request on the entity at `path`."""
    properties: dict[Any, Any] = dict(request.properties or {})
    operation = str(properties.get("operation", ""))
    body = request.body if isinstance(request.body, dict) else {}
    handler = _OPERATIONS.get(operation)
    if handler is None:
        description = f"The operation {operation!r} is not supported by the local broker."
        return 501, description, {}, NOT_IMPLEMENTED, set()
    try:
        status, reply, touched = handler(namespace, path, body)
    except LockLost as error:
        return 410, str(error), {}, LOCK_LOST, set()
    except MessageNotFound as error:
        return 404, str(error), {}, MESSAGE_NOT_FOUND, set()
    except SessionUnavailable as error:
        return 410, str(error), {}, SESSION_CANNOT_BE_LOCKED, set()
    except EntityNotFound as error:
        return 404, str(error), {}, NOT_FOUND, set()
    return status, "OK" if status == 200 else "No messages", reply, None, touched


def _schedule(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    payloads = [bytes(item["message"]) for item in body.get("messages", [])]
    numbers = namespace.schedule(path, payloads)
    return 200, {"sequence-numbers": _array(Data.LONG, numbers)}, set()


def _cancel_scheduled(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    namespace.cancel_scheduled(path, elements(body.get("sequence-numbers")))
    return 200, {}, set()


def _renew_lock(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    expirations = [
        timestamp(int(namespace.renew_lock(path, token) * 1000))
        for token in elements(body.get("lock-tokens"))
    ]
    return 200, {"expirations": _array(Data.TIMESTAMP, expirations)}, set()


def _peek(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    found = namespace.peek(
        path,
        int(body.get("from-sequence-number", 0)),
        int(body.get("message-count", 1)),
        text(body.get("session-id")),
    )
    if not found:
        return 204, {}, set()
    return 200, {"messages": [{"message": payload} for payload in found]}, set()


def _receive_deferred(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    """`receiver-settle-mode` 0 is receive-and-delete, 1 peek-lock (as the SDKs send it)."""
    peek_lock = int(body.get("receiver-settle-mode", 1)) != 0
    found = namespace.take_deferred(
        path, [int(n) for n in elements(body.get("sequence-numbers"))], peek_lock
    )
    messages = [
        {"message": item.payload, "lock-token": item.lock_token}
        if item.lock_token is not None
        else {"message": item.payload}
        for item in found
    ]
    return 200, {"messages": messages}, set()


def _update_disposition(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    """Settlement of messages received through `$management` (deferred ones), and the SDKs'
    fallback when the receiving link is gone."""
    status = str(body.get("disposition-status", ""))
    modified = modified_properties(body.get("properties-to-modify"))
    touched: set[MessageStore] = set()
    for token in elements(body.get("lock-tokens")):
        if status == "completed":
            namespace.complete(path, token)
        elif status == "abandoned":
            touched |= namespace.abandon(path, token, modified)
        elif status == "defered":  # sic: the spelling of the management spec and the SDKs
            namespace.defer(path, token, modified)
        elif status == "suspended":
            touched |= namespace.dead_letter(
                path,
                token,
                text(body.get("deadletter-reason")),
                text(body.get("deadletter-description")),
            )
        else:
            raise LockLost(f"disposition {status!r} is not supported")
    return 200, {}, touched


def _renew_session_lock(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    until = namespace.renew_session(path, str(body.get("session-id")))
    return 200, {"expiration": timestamp(int(until * 1000))}, set()


def _set_session_state(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    state = body.get("session-state")
    namespace.session_state(
        path, str(body.get("session-id")), b"" if state is None else bytes(state)
    )
    return 200, {}, set()


def _get_session_state(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    state = namespace.session_state(path, str(body.get("session-id")))
    return 200, {"session-state": state}, set()


# Descriptors of the rule descriptions `com.microsoft:enumerate-rules` answers with (Service Bus
# AMQP request-response, "Get rules"; the Node SDK's core-amqp Constants.descriptorCodes).
RULE_DESCRIPTION = ulong(0x0000013700000004)
EMPTY_RULE_ACTION = ulong(0x0000013700000005)
TRUE_FILTER = ulong(0x0000001370000007)
CORRELATION_FILTER = ulong(0x0000001370000009)
_SYSTEM_FIELDS = (  # the correlation filter's list order, as topology.py names the fields
    "correlation_id",  # correlation-id
    "id",  # message-id
    "address",  # to
    "reply_to",  # reply-to
    "subject",  # label
    "group_id",  # session-id
    "reply_to_group_id",  # reply-to-session-id
    "content_type",  # content-type
)


def _enumerate_rules(namespace: Namespace, path: str, body: Mapping[str, Any]) -> _Reply:
    """A subscription's rules, `skip` and `top` as the SDKs page them: each a rule-description
    (filter, action, name), the TrueFilter as `1=1`."""
    rules = namespace.rules(path)
    skip, top = int(body.get("skip", 0)), int(body.get("top", len(rules)))
    found = rules[skip : skip + top]
    if not found:
        return 204, {}, set()
    return 200, {"rules": [{"rule-description": _rule(rule)} for rule in found]}, set()


def _rule(rule: Rule) -> Described:
    action = Described(EMPTY_RULE_ACTION, [])
    return Described(RULE_DESCRIPTION, [_filter(rule.filter), action, rule.name])


def _filter(found: CorrelationFilter | None) -> Described:
    if found is None:
        return Described(TRUE_FILTER, ["1=1", None])
    system = [found.system.get(name) for name in _SYSTEM_FIELDS]
    return Described(CORRELATION_FILTER, [*system, cast(Any, dict(found.properties))])


_OPERATIONS: dict[str, Callable[[Namespace, str, Mapping[str, Any]], _Reply]] = {
    "com.microsoft:schedule-message": _schedule,
    "com.microsoft:cancel-scheduled-message": _cancel_scheduled,
    "com.microsoft:renew-lock": _renew_lock,
    "com.microsoft:peek-message": _peek,
    "com.microsoft:receive-by-sequence-number": _receive_deferred,
    "com.microsoft:update-disposition": _update_disposition,
    "com.microsoft:renew-session-lock": _renew_session_lock,
    "com.microsoft:set-session-state": _set_session_state,
    "com.microsoft:get-session-state": _get_session_state,
    "com.microsoft:enumerate-rules": _enumerate_rules,
}


def modified_properties(value: Any) -> dict[Any, Any] | None:
    """`propertiesToModify` as a plain dict (a proton map, or nothing)."""
    if not value:
        return None
    return {(text(k) or ""): v for k, v in dict(value).items()}


def _array(kind: int, values: list[Any]) -> Array:
    return Array(cast(Any, UNDESCRIBED), kind, *values)


def elements(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Array):
        return list(value.elements)
    return list(value)


def text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    return str(value)
