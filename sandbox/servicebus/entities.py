"""Broker state: queues, topics with subscriptions, locks, dead letters, schedules, duplicates.

No networking here: the AMQP side (broker.py) calls these methods from its event thread, tests
read counts from theirs, so every public method takes the namespace lock. Time comes from the
injected clock only, so a ManualClock moves lock expiry, schedules and the duplicate window.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from proton import Data, Described, Message, int32, symbol, timestamp, ulong

from sandbox.clock import Clock
from sandbox.servicebus.topology import (
    CorrelationFilter,
    EntitySettings,
    Rule,
    Topology,
)

SEQUENCE_NUMBER = symbol("x-opt-sequence-number")
ENQUEUED_TIME = symbol("x-opt-enqueued-time")
LOCKED_UNTIL = symbol("x-opt-locked-until")
LOCK_TOKEN = symbol("x-opt-lock-token")
SCHEDULED_ENQUEUE_TIME = symbol("x-opt-scheduled-enqueue-time")
MESSAGE_STATE = symbol("x-opt-message-state")  # 0 active, 1 deferred, 2 scheduled
_DEFERRED_STATE = int32(1)
_SCHEDULED_STATE = int32(2)
DEAD_LETTER_SOURCE = symbol("x-opt-deadletter-source")
DEAD_LETTER_REASON = "DeadLetterReason"
DEAD_LETTER_DESCRIPTION = "DeadLetterErrorDescription"

_SECTION_DESCRIPTORS = range(0x70, 0x79)
_DATA_SECTION = 0x75
_HEADER_SECTION = 0x70


class EntityNotFound(LookupError):
    """No queue, topic, subscription or dead-letter queue at that path."""


class NotAllowed(ValueError):
    """An operation the entity's settings forbid (`amqp:not-allowed`)."""


class LockLost(LookupError):
    """The lock token is unknown or its lock expired: the message went back or away."""


class MessageNotFound(LookupError):
    """No deferred message with that sequence number (`com.microsoft:message-not-found`)."""


class SessionUnavailable(LookupError):
    """The session is locked by another receiver, or no session has messages."""


@dataclass
class StoredMessage:
    """One message in one queue/subscription; `payload` is the AMQP encoding as sent."""

    payload: bytes
    sequence_number: int
    enqueued_at: float
    expires_at: float
    failed_deliveries: int = 0
    session_id: str | None = None
    deferred: bool = False
    scheduled: bool = False


@dataclass
class Lock:
    message: StoredMessage
    locked_until: float


@dataclass
class Session:
    """A session of a session-enabled queue or subscription: its state and who holds its lock."""

    state: bytes | None = None
    holder: object | None = None
    locked_until: float = 0.0


@dataclass(frozen=True)
class Delivery:
    """What a receiver gets: the encoded message and its lock token (None: receive-and-delete)."""

    payload: bytes
    lock_token: uuid.UUID | None


class MessageStore:
    """A queue, a subscription or a dead-letter sub-queue: available messages and held locks."""

    def __init__(self, path: str, settings: EntitySettings, dead_letters: MessageStore | None):
        self.path = path
        self.settings = settings
        self.dead_letters = dead_letters
        self._available: list[StoredMessage] = []
        self.locks: dict[uuid.UUID, Lock] = {}
        self.deferred: dict[int, StoredMessage] = {}
        self.sessions: dict[str, Session] = {}

    @property
    def available_count(self) -> int:
        return len(self._available)

    def add(self, message: StoredMessage) -> None:
        keys = [m.sequence_number for m in self._available]
        self._available.insert(bisect.bisect(keys, message.sequence_number), message)

    def take(self, now: float, peek_lock: bool, session: str | None = None) -> Delivery | None:
        """The oldest available message (of `session` on a session-enabled entity), locked for
        LockDuration or removed (receive-and-delete)."""
        if self.settings.requires_session and session is None:
            return None
        index = next(
            (
                i
                for i, m in enumerate(self._available)
                if session is None or m.session_id == session
            ),
            None,
        )
        if index is None:
            return None
        return self._hand_out(self._available.pop(index), now, peek_lock)

    def _hand_out(self, stored: StoredMessage, now: float, peek_lock: bool) -> Delivery:
        if not peek_lock:
            return Delivery(_for_receiver(stored, locked_until=None, token=None), None)
        token = uuid.uuid4()
        until = now + self.settings.lock_duration
        self.locks[token] = Lock(stored, until)
        return Delivery(_for_receiver(stored, locked_until=until, token=token), token)

    def take_deferred(
        self, sequence_numbers: Iterable[int], now: float, peek_lock: bool
    ) -> list[Delivery]:
        """`receive-by-sequence-number`: deferred messages only, each locked again."""
        numbers = list(sequence_numbers)
        missing = [n for n in numbers if n not in self.deferred]
        if missing:
            raise MessageNotFound(
                f"No deferred message with sequence number(s) {missing} in {self.path}."
            )
        return [self._hand_out(self.deferred.pop(n), now, peek_lock) for n in numbers]

    def defer(self, message: StoredMessage) -> None:
        message.deferred = True
        self.deferred[message.sequence_number] = message

    def give_back(self, message: StoredMessage) -> None:
        """After an abandon or a lapsed lock: deferred messages stay deferred."""
        if message.deferred:
            self.defer(message)
        else:
            self.add(message)

    def peek(
        self,
        from_sequence: int,
        count: int,
        session: str | None = None,
        scheduled: Iterable[StoredMessage] = (),
    ) -> list[bytes]:
        """Messages from a sequence number on, none locked by this: "active, locked, deferred;
        scheduled for queues, not subscriptions; not dead-lettered" (message-browsing.md)."""
        every = sorted(
            [
                *self._available,
                *(lock.message for lock in self.locks.values()),
                *self.deferred.values(),
                *scheduled,
            ],
            key=lambda m: m.sequence_number,
        )
        chosen = [
            m
            for m in every
            if m.sequence_number >= from_sequence and (session is None or m.session_id == session)
        ][:count]
        return [_for_receiver(m, locked_until=None, token=None) for m in chosen]

    # -- sessions ----------------------------------------------------------------------------

    def lock_session(self, session: str | None, holder: object, now: float) -> tuple[str, float]:
        """Lock `session` (or the first unlocked one with messages) for `holder`."""
        if session is None:
            free = (
                m.session_id
                for m in self._available
                if m.session_id is not None and not self._session_held(m.session_id, now)
            )
            session = next(free, None)
            if session is None:
                raise SessionUnavailable(f"No unlocked session with messages in {self.path}.")
        elif self._session_held(session, now):
            raise SessionUnavailable(
                f"The session {session!r} of {self.path} is locked by another receiver."
            )
        state = self.sessions.setdefault(session, Session())
        state.holder = holder
        state.locked_until = now + self.settings.lock_duration
        return session, state.locked_until

    def _session_held(self, session: str, now: float) -> bool:
        state = self.sessions.get(session)
        return state is not None and state.holder is not None and state.locked_until > now

    def release_session(self, holder: object) -> None:
        for state in self.sessions.values():
            if state.holder is holder:
                state.holder = None

    def session(self, session: str) -> Session:
        return self.sessions.setdefault(session, Session())

    def unlock(self, token: uuid.UUID, now: float) -> StoredMessage:
        lock = self.locks.get(token)
        if lock is None or lock.locked_until <= now:
            raise LockLost(f"the lock {token} on {self.path} is lost or expired")
        del self.locks[token]
        return lock.message

    def renew(self, token: uuid.UUID, now: float) -> float:
        lock = self.locks.get(token)
        if lock is None or lock.locked_until <= now:
            raise LockLost(f"the lock {token} on {self.path} is lost or expired")
        lock.locked_until = now + self.settings.lock_duration
        return lock.locked_until

    def count_failure(self, message: StoredMessage) -> StoredMessage | None:
        """Back to available after a failed delivery, or the message when it must dead-letter.

        "Service Bus increments the delivery count each time a message is received and then
        abandoned or its lock expires; when the count exceeds the maximum delivery count the
        message is moved to the DLQ" (service-bus-dead-letter-queues.md): the count a receiver
        sees is 0 on the first delivery, so the MaxDeliveryCount-th failure dead-letters.
        """
        message.failed_deliveries += 1
        exhausted = message.failed_deliveries >= self.settings.max_delivery_count
        if exhausted and self.dead_letters is not None:
            return message
        self.give_back(message)
        return None

    def expire_locks(self, now: float) -> list[StoredMessage]:
        """Return expired locks' messages to the store; the ones out of attempts are returned."""
        exhausted = []
        for token in [t for t, lock in self.locks.items() if lock.locked_until <= now]:
            failed = self.count_failure(self.locks.pop(token).message)
            if failed is not None:
                exhausted.append(failed)
        return exhausted

    def expire_messages(self, now: float) -> list[StoredMessage]:
        """Drop available messages past their time-to-live and return them."""
        expired = [m for m in self._available if m.expires_at <= now]
        if expired:
            self._available = [m for m in self._available if m.expires_at > now]
        for number in [n for n, m in self.deferred.items() if m.expires_at <= now]:
            expired.append(self.deferred.pop(number))
        return expired


@dataclass
class _Scheduled:
    at: float
    sequence_number: int
    payload: bytes


@dataclass
class SendTarget:
    """A queue or topic: what senders address. Owns sequence numbers, duplicates, schedules."""

    name: str
    requires_duplicate_detection: bool
    duplicate_window: float
    default_ttl: float
    next_sequence: int = 1
    seen_ids: dict[str, float] = field(default_factory=dict)
    scheduled: list[_Scheduled] = field(default_factory=list)


class Namespace:
    """All entities of one namespace and the rules that move messages between them."""

    def __init__(self, topology: Topology, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._targets: dict[str, SendTarget] = {}
        self._stores: dict[str, MessageStore] = {}
        # send target name → (rules or None for a queue, store) it fans out to
        self._routes: dict[str, list[tuple[tuple[Rule, ...] | None, MessageStore]]] = {}
        self.dropped_duplicates = 0
        for queue in topology.queues:
            store = self._add_store(queue.name, queue.settings)
            self._targets[queue.name.lower()] = SendTarget(
                queue.name,
                queue.requires_duplicate_detection,
                queue.duplicate_window,
                queue.settings.default_ttl,
            )
            self._routes[queue.name.lower()] = [(None, store)]
        for topic in topology.topics:
            self._targets[topic.name.lower()] = SendTarget(
                topic.name,
                topic.requires_duplicate_detection,
                topic.duplicate_window,
                topic.default_ttl,
            )
            self._routes[topic.name.lower()] = [
                (sub.rules, self._add_store(f"{topic.name}/Subscriptions/{sub.name}", sub.settings))
                for sub in topic.subscriptions
            ]

    def _add_store(self, path: str, settings: EntitySettings) -> MessageStore:
        dead = MessageStore(path + "/$DeadLetterQueue", settings, None)
        store = MessageStore(path, settings, dead)
        self._stores[path.lower()] = store
        self._stores[dead.path.lower()] = dead
        return store

    # -- lookups ---------------------------------------------------------------------------

    def has_target(self, path: str) -> bool:
        return path.lower() in self._targets

    def has_store(self, path: str) -> bool:
        return path.lower() in self._stores

    def rules(self, path: str) -> tuple[Rule, ...]:
        """A subscription's rules in order (`$Default` first, as Service Bus lists them)."""
        store = self.store(path)
        for routes in self._routes.values():
            for rules, target in routes:
                if target is store and rules is not None:
                    return rules
        raise EntityNotFound(f"'{path}' is not a subscription: only subscriptions have rules.")

    def store(self, path: str) -> MessageStore:
        try:
            return self._stores[path.lower()]
        except KeyError:
            raise EntityNotFound(f"The messaging entity '{path}' could not be found.") from None

    def _target(self, path: str) -> SendTarget:
        try:
            return self._targets[path.lower()]
        except KeyError:
            raise EntityNotFound(f"The messaging entity '{path}' could not be found.") from None

    # -- sending ---------------------------------------------------------------------------

    def send(self, path: str, payload: bytes) -> set[MessageStore]:
        """Accept one encoded message (or a batch) sent to a queue or topic.

        Returns the stores that gained messages, so the caller can wake their receivers.
        """
        with self._lock:
            target = self._target(path)
            now = self._clock.now()
            touched: set[MessageStore] = set()
            singles = [_with_message_id(given) for given in split_batch(payload) or [payload]]
            self._check_sessions(target, [message for _, message in singles])
            for single, message in singles:
                if self._is_duplicate(target, message, now):
                    continue
                at = _scheduled_time(message)
                if at is not None and at > now:
                    self._schedule(target, at, single)
                else:
                    touched |= self._enqueue(target, single, now, self._new_sequence(target))
            return touched

    def _check_sessions(self, target: SendTarget, messages: list[Message]) -> None:
        """A session-enabled queue takes only messages with a session id (the whole batch is
        refused otherwise), as Service Bus refuses them."""
        for rules, store in self._routes[target.name.lower()]:
            if (
                rules is None
                and store.settings.requires_session
                and any(m.group_id is None for m in messages)
            ):
                raise NotAllowed(
                    "The SessionId was not set on a message, and it cannot be sent to the "
                    f"entity '{target.name}'. Entities that have session support enabled "
                    "can only receive messages that have the SessionId set to a valid value."
                )

    def schedule(self, path: str, payloads: Iterable[bytes]) -> list[int]:
        """The `schedule-message` management operation: each message carries its time in the
        `x-opt-scheduled-enqueue-time` annotation. Returns their sequence numbers."""
        with self._lock:
            target = self._target(path)
            now = self._clock.now()
            return [
                self._schedule(target, _scheduled_time(_decode(payload)) or now, payload)
                for payload in payloads
            ]

    def cancel_scheduled(self, path: str, sequence_numbers: Iterable[int]) -> None:
        with self._lock:
            target = self._target(path)
            cancelled = set(sequence_numbers)
            target.scheduled = [s for s in target.scheduled if s.sequence_number not in cancelled]

    def _schedule(self, target: SendTarget, at: float, payload: bytes) -> int:
        number = self._new_sequence(target)
        target.scheduled.append(_Scheduled(at, number, payload))
        return number

    def _new_sequence(self, target: SendTarget) -> int:
        number = target.next_sequence
        target.next_sequence += 1
        return number

    def _is_duplicate(self, target: SendTarget, message: Message, now: float) -> bool:
        if not target.requires_duplicate_detection or message.id is None:
            return False
        horizon = now - target.duplicate_window
        target.seen_ids = {k: t for k, t in target.seen_ids.items() if t > horizon}
        key = str(message.id)
        if key in target.seen_ids:
            self.dropped_duplicates += 1
            return True
        target.seen_ids[key] = now
        return False

    def _enqueue(
        self, target: SendTarget, payload: bytes, now: float, sequence: int, hops: int = 0
    ) -> set[MessageStore]:
        message = _decode(payload)
        touched: set[MessageStore] = set()
        for rules, store in self._routes[target.name.lower()]:
            if rules is not None and not _matches(rules, message):
                continue
            if store.settings.forward_to and hops < 4:
                forward = self._target(store.settings.forward_to)
                touched |= self._enqueue(
                    forward, payload, now, self._new_sequence(forward), hops + 1
                )
                continue
            ttl = min(message.ttl or float("inf"), target.default_ttl, store.settings.default_ttl)
            session = None if message.group_id is None else str(message.group_id)
            store.add(StoredMessage(payload, sequence, now, now + ttl, session_id=session))
            touched.add(store)
        return touched

    # -- receiving and settling ------------------------------------------------------------

    def take(self, path: str, peek_lock: bool, session: str | None = None) -> Delivery | None:
        with self._lock:
            return self.store(path).take(self._clock.now(), peek_lock, session)

    def take_deferred(
        self, path: str, sequence_numbers: Iterable[int], peek_lock: bool
    ) -> list[Delivery]:
        with self._lock:
            return self.store(path).take_deferred(sequence_numbers, self._clock.now(), peek_lock)

    def defer(self, path: str, token: uuid.UUID, modified: dict[Any, Any] | None = None) -> None:
        """Deferred messages leave the queue's order; only `take_deferred` hands them out."""
        with self._lock:
            store = self.store(path)
            store.defer(_modified(store.unlock(token, self._clock.now()), modified))

    def lock_session(self, path: str, session: str | None, holder: object) -> tuple[str, float]:
        with self._lock:
            return self.store(path).lock_session(session, holder, self._clock.now())

    def release_sessions(self, path: str, holder: object) -> None:
        with self._lock:
            if self.has_store(path):
                self.store(path).release_session(holder)

    def renew_session(self, path: str, session: str) -> float:
        with self._lock:
            state = self.store(path).session(session)
            state.locked_until = self._clock.now() + self.store(path).settings.lock_duration
            return state.locked_until

    def session_state(self, path: str, session: str, state: bytes | None = None) -> bytes | None:
        """Read the session's state, or set it when `state` is given."""
        with self._lock:
            held = self.store(path).session(session)
            if state is not None:
                held.state = state
            return held.state

    def complete(self, path: str, token: uuid.UUID) -> None:
        with self._lock:
            self.store(path).unlock(token, self._clock.now())

    def release(self, path: str, token: uuid.UUID) -> set[MessageStore]:
        """Give a message back unread (the receiver was not asking): no delivery is counted."""
        with self._lock:
            store = self.store(path)
            store.add(store.unlock(token, self._clock.now()))
            return {store}

    def abandon(
        self, path: str, token: uuid.UUID, modified: dict[Any, Any] | None = None
    ) -> set[MessageStore]:
        """A failed delivery: counted, `modified` merged into the application properties."""
        with self._lock:
            store = self.store(path)
            now = self._clock.now()
            exhausted = store.count_failure(_modified(store.unlock(token, now), modified))
            if exhausted is not None:
                return {store, *self._max_delivery_exceeded(store, exhausted)}
            return {store}

    def dead_letter(
        self, path: str, token: uuid.UUID, reason: str | None, description: str | None
    ) -> set[MessageStore]:
        with self._lock:
            store = self.store(path)
            message = store.unlock(token, self._clock.now())
            return self._to_dead_letters(store, message, reason, description)

    def renew_lock(self, path: str, token: uuid.UUID) -> float:
        with self._lock:
            return self.store(path).renew(token, self._clock.now())

    def peek(
        self, path: str, from_sequence: int, count: int, session: str | None = None
    ) -> list[bytes]:
        with self._lock:
            target = self._targets.get(path.lower())  # a queue: its schedule is peeked too
            scheduled = [
                StoredMessage(s.payload, s.sequence_number, s.at, float("inf"), scheduled=True)
                for s in (target.scheduled if target is not None else [])
            ]
            return self.store(path).peek(from_sequence, count, session, scheduled)

    def _max_delivery_exceeded(self, store: MessageStore, message: StoredMessage) -> set:
        return self._to_dead_letters(
            store,
            message,
            "MaxDeliveryCountExceeded",
            f"Message could not be consumed after {store.settings.max_delivery_count} "
            "delivery attempts.",
        )

    def _to_dead_letters(
        self,
        store: MessageStore,
        message: StoredMessage,
        reason: str | None,
        description: str | None,
    ) -> set[MessageStore]:
        dead = store.dead_letters
        if dead is None:  # dead-lettering from the dead-letter queue itself: it just goes
            return set()
        decoded = _decode(message.payload)
        properties: dict[Any, Any] = dict(decoded.properties or {})
        if reason is not None:
            properties[DEAD_LETTER_REASON] = reason
        if description is not None:
            properties[DEAD_LETTER_DESCRIPTION] = description
        decoded.properties = properties  # type: ignore[assignment]  # proton types it as None
        payload = bytes(decoded.encode())
        if store.settings.forward_dead_letters_to:
            annotations = dict(decoded.annotations or {})
            annotations[DEAD_LETTER_SOURCE] = store.path
            decoded.annotations = annotations
            forward = self._target(store.settings.forward_dead_letters_to)
            now = self._clock.now()
            return self._enqueue(forward, bytes(decoded.encode()), now, self._new_sequence(forward))
        dead.add(
            StoredMessage(
                payload,
                message.sequence_number,
                message.enqueued_at,
                float("inf"),
                message.failed_deliveries,
            )
        )
        return {dead}

    # -- time ------------------------------------------------------------------------------

    def tick(self) -> set[MessageStore]:
        """Apply the clock: due schedules, lapsed locks, expired messages. Returns woken stores."""
        with self._lock:
            now = self._clock.now()
            touched: set[MessageStore] = set()
            for target in self._targets.values():
                due = sorted(
                    (s for s in target.scheduled if s.at <= now), key=lambda s: s.sequence_number
                )
                if due:
                    target.scheduled = [s for s in target.scheduled if s.at > now]
                    for item in due:
                        touched |= self._enqueue(target, item.payload, now, item.sequence_number)
            for store in list(self._stores.values()):
                for message in store.expire_locks(now):
                    touched |= self._max_delivery_exceeded(store, message)
                for message in store.expire_messages(now):
                    if store.settings.dead_letter_on_expiration:
                        touched |= self._to_dead_letters(
                            store,
                            message,
                            "TTLExpiredException",
                            "The message expired and was dead lettered.",
                        )
                if store.available_count:
                    touched.add(store)
            return touched

    # -- inspection (tests, the sandbox CLI) -----------------------------------------------

    def counts(self, path: str) -> dict[str, int]:
        """Active (available), locked and dead-lettered messages of a queue or subscription, and
        for a queue the scheduled ones (a topic keeps its schedule before fanning out)."""
        with self._lock:
            store = self.store(path)
            dead = store.dead_letters
            scheduled = 0
            target = self._targets.get(path.lower())
            if target is not None:
                scheduled = len(target.scheduled)
            return {
                "active": store.available_count,
                "locked": len(store.locks),
                "dead_lettered": dead.available_count + len(dead.locks) if dead else 0,
                "scheduled": scheduled,
            }


def split_batch(payload: bytes) -> list[bytes] | None:
    """The messages of a batch envelope, or None when `payload` is a single message.

    The SDK sends a batch as one transfer (message format 0x80013700, which proton does not
    expose) whose data sections each hold one encoded message; a single message's data section
    holds the user's bytes. A body whose every data section is itself an AMQP message is a batch.
    """
    inner: list[bytes] = []
    data = Data()
    rest = memoryview(payload)
    while rest:
        data.clear()
        try:
            used = data.decode(bytes(rest))
        except Exception:  # proton raises DataException subclasses; any failure means "not a batch"
            return None
        section = data.get_object()
        rest = rest[used:]
        if isinstance(section, Described) and section.descriptor == ulong(_DATA_SECTION):
            inner.append(bytes(cast(bytes, section.value)))
    if not inner or not all(_looks_like_message(part) for part in inner):
        return None
    return inner


def _looks_like_message(part: bytes) -> bool:
    if len(part) < 3 or part[0] != 0x00 or part[1] != 0x53 or part[2] not in _SECTION_DESCRIPTORS:
        return False
    try:
        _decode(part)
    except Exception:
        return False
    return True


def _with_message_id(payload: bytes) -> tuple[bytes, Message]:
    """A message sent without a message id gets one from the broker, a GUID in .NET's `N`
    format, as Service Bus stamps one: receivers always see a MessageId (the Node SDK keys its
    lock renewal by it, `LockRenewer._stopAndRemoveById` in @azure/service-bus)."""
    message = _decode(payload)
    if message.id is not None:
        return payload, message
    message.id = uuid.uuid4().hex
    return bytes(message.encode()), message


def _modified(message: StoredMessage, properties: dict[Any, Any] | None) -> StoredMessage:
    """Apply the `propertiesToModify` of an abandon or defer to the application properties."""
    if not properties:
        return message
    decoded = _decode(message.payload)
    merged: dict[Any, Any] = dict(decoded.properties or {})
    merged.update({str(key): value for key, value in properties.items()})
    decoded.properties = merged  # type: ignore[assignment]  # proton types it as None
    message.payload = bytes(decoded.encode())
    return message


def _decode(payload: bytes) -> Message:
    message = Message()
    message.decode(payload)
    return message


def _scheduled_time(message: Message) -> float | None:
    annotations: dict[Any, Any] = dict(message.annotations or {})
    value = annotations.get(SCHEDULED_ENQUEUE_TIME)
    if value is None:
        return None
    if hasattr(value, "timestamp"):  # a datetime
        return float(value.timestamp())
    return float(value) / 1000.0


def _for_receiver(
    stored: StoredMessage, locked_until: float | None, token: uuid.UUID | None
) -> bytes:
    """The message as a receiver sees it: broker annotations and a full header added."""
    message = _decode(stored.payload)
    ttl = message.ttl
    annotations = dict(message.annotations or {})
    annotations[SEQUENCE_NUMBER] = stored.sequence_number
    annotations[ENQUEUED_TIME] = timestamp(int(stored.enqueued_at * 1000))
    if locked_until is not None and token is not None:
        annotations[LOCKED_UNTIL] = timestamp(int(locked_until * 1000))
        annotations[LOCK_TOKEN] = token
    if stored.deferred:
        annotations[MESSAGE_STATE] = _DEFERRED_STATE
    elif stored.scheduled:
        annotations[MESSAGE_STATE] = _SCHEDULED_STATE
    message.annotations = annotations
    return _header(stored.failed_deliveries, ttl) + _without_header(bytes(message.encode()))


def _header(delivery_count: int, ttl: float) -> bytes:
    """A header with every field written: proton drops trailing defaults, and the SDK then
    reports `delivery_count` as None instead of 0."""
    data = Data()
    data.put_described()
    data.enter()
    data.put_ulong(_HEADER_SECTION)
    data.put_list()
    data.enter()
    data.put_bool(True)  # durable, as Service Bus stores every message
    data.put_ubyte(4)  # default priority
    if ttl:
        data.put_uint(int(ttl * 1000))
    else:
        data.put_null()
    data.put_bool(delivery_count == 0)  # first-acquirer
    data.put_uint(delivery_count)
    data.exit()
    data.exit()
    return bytes(data.encode())


def _without_header(payload: bytes) -> bytes:
    data = Data()
    used = data.decode(payload)
    first = data.get_object()
    if isinstance(first, Described) and first.descriptor == ulong(_HEADER_SECTION):
        return payload[used:]
    return payload


def _matches(rules: tuple[Rule, ...], message: Message) -> bool:
    """A subscription without rules takes everything; otherwise any matching rule is enough."""
    if not rules:
        return True
    return any(rule.filter is None or _correlates(rule.filter, message) for rule in rules)


def _correlates(spec: CorrelationFilter, message: Message) -> bool:
    for attribute, expected in spec.system.items():
        actual = getattr(message, attribute)
        if actual is None or str(actual) != expected:
            return False
    properties: dict[Any, Any] = dict(message.properties or {})
    for key, expected in spec.properties.items():
        if key not in properties or not _same_value(properties[key], expected):
            return False
    return True


def _same_value(actual: object, expected: object) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual == expected
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return actual == expected
    return str(actual) == str(expected)
