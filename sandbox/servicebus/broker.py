"""A local AMQP 1.0 broker that the real `azure-servicebus` client sends to and receives from.

Built on python-qpid-proton's reactor, serving plain TCP with SASL ANONYMOUS on 127.0.0.1 as the
SDK does for an emulator connection string (`UseDevelopmentEmulator=true`). What the SDK needs
beyond plain AMQP, and what this module therefore answers itself:

- the CBS put-token exchange on `$cbs` (reply correlated to the request's message-id, 200);
- replies of `$cbs` and `$management` sent where the request's `reply-to` says: the name of the
  client's receiving link (the Node SDK: "CBS replyTo - The receiver link name that the service
  should reply to", @azure/core-amqp cbs.js) or its address (the Python SDK);
- entity addresses that are full URIs (`amqps://host:port/<queue>`,
  `.../<topic>/Subscriptions/<sub>`, `.../$DeadLetterQueue`);
- peek-lock: the 16-byte delivery tag is the lock token; settlements arrive unsettled and are
  echoed settled with the outcome applied (accepted; modified for abandon, counted as a failed
  delivery with its message-annotations merged into the application properties; modified
  undeliverable-here for defer; rejected for dead-letter; or rejected with
  `com.microsoft:message-lock-lost` when the lock is gone) — the outcomes the Node SDK sends in
  `MessageReceiver.settleMessage` and the Python SDK in
  `PyamqpTransport.settle_message_via_receiver_link`;
- sessions: a receiver's `com.microsoft:session-filter` (a session id, or null for the next
  free session) is echoed on the attach with the session locked and its lock time in
  `com.microsoft:locked-until-utc` (.NET ticks, read by the Node SDK's `convertTicksToDate`);
- receive-and-delete, requested by the receiver as sender-settle-mode `settled`;
- the `$management` node, answered by `sandbox.servicebus.management`.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from proton import (
    Condition,
    Data,
    Delivery,
    Described,
    Endpoint,
    Handler,
    Link,
    Message,
    symbol,
)
from proton.reactor import Container

from sandbox.clock import Clock, ScaledClock
from sandbox.kit.service import Service
from sandbox.servicebus import management
from sandbox.servicebus.entities import (
    EntityNotFound,
    LockLost,
    MessageStore,
    Namespace,
    NotAllowed,
    SessionUnavailable,
)
from sandbox.servicebus.management import LOCK_LOST, NOT_FOUND, SESSION_CANNOT_BE_LOCKED
from sandbox.servicebus.topology import load_topology

LOG = logging.getLogger(__name__)

CBS_NODE = "$cbs"
MANAGEMENT_SUFFIX = "/$management"
MAX_MESSAGE_SIZE = 256 * 1024  # Standard tier; the SDK sizes its batches from this
SESSION_FILTER = symbol("com.microsoft:session-filter")
LOCKED_UNTIL_UTC = symbol("com.microsoft:locked-until-utc")
NOT_ALLOWED = "amqp:not-allowed"
TIMEOUT = "com.microsoft:timeout"
_EPOCH_TICKS = 621_355_968_000_000_000  # .NET ticks (100 ns) at 1970-01-01
_RECEIVER_CREDIT = 100

_F = TypeVar("_F", bound=Callable[..., None])


def _logged(method: _F) -> _F:
    """Keep the event loop alive when one event fails: log it and remember it for the tests."""

    @functools.wraps(method)
    def wrapper(self: _AmqpHandler, event: Any) -> None:
        try:
            method(self, event)
        except Exception as error:
            LOG.exception("service bus broker: %s failed", method.__name__)
            self.broker.errors.append(f"{method.__name__}: {error!r}")

    return wrapper  # type: ignore[return-value]


@dataclass
class _Role:
    """What a link is for: a node (`cbs`, `management`), or an entity to send to / receive from."""

    kind: str  # "cbs" | "management" | "send" | "receive"
    path: str
    peek_lock: bool = True
    session: str | None = None
    pending_replies: list[bytes] = field(default_factory=list)


def entity_path(address: str | None) -> str:
    """`amqps://127.0.0.1:5672/topic/Subscriptions/all` → `topic/Subscriptions/all`."""
    if not address:
        return ""
    if "://" in address:
        address = address.split("://", 1)[1]
        address = address.split("/", 1)[1] if "/" in address else ""
    return address.strip("/")


class ServiceBusBroker(Service):
    """The broker server: `start()` serves on 127.0.0.1 in a daemon thread, `stop()` ends it.

    `clock` drives lock expiry, schedules, time-to-live and the duplicate window (real time by
    default); the broker looks at it every `tick_seconds`, so a ManualClock.advance takes effect
    within one tick. State lives in `namespace` and survives a stop/start.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | Path,
        clock: Clock | None = None,
        *,
        tick_seconds: float = 0.05,
    ) -> None:
        self.topology = load_topology(config)
        self.clock: Clock = clock or ScaledClock(1.0)
        self.namespace = Namespace(self.topology, self.clock)
        self.port = 0
        self.errors: list[str] = []
        self._tick_seconds = tick_seconds
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"amqp://127.0.0.1:{self.port}"

    @property
    def connection_string(self) -> str:
        """The emulator-mode connection string the SDK needs (plain TCP, SASL ANONYMOUS)."""
        return (
            f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
        )

    def start(self) -> ServiceBusBroker:
        if self._thread is not None:
            raise RuntimeError("the broker is already started")
        handler = _AmqpHandler(self)
        container = Container(handler)
        acceptor = container.acceptor("127.0.0.1", "0")
        # proton's Acceptor has no public accessor for the bound socket; its selectable
        # delegates attribute lookups to the listening socket.
        self.port = acceptor._selectable.getsockname()[1]
        handler.acceptor = acceptor
        container.schedule(self._tick_seconds, handler)
        self._stop_requested.clear()
        self._thread = threading.Thread(
            target=container.run, name=f"servicebus-broker-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket, then join the thread. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        self._stop_requested.set()
        thread.join(timeout=10)
        if thread.is_alive():
            raise RuntimeError("the Service Bus broker thread did not stop within 10 s")
        self._thread = None

    # -- inspection ------------------------------------------------------------------------

    def counts(self, path: str) -> dict[str, int]:
        """`{"active", "locked", "dead_lettered", "scheduled"}` for a queue or subscription path
        such as `provisioning-requests` or `gpu-provisioning-events/Subscriptions/all`."""
        return self.namespace.counts(path)


class _AmqpHandler(Handler):
    """Proton events → namespace operations. Runs only on the broker thread."""

    def __init__(self, broker: ServiceBusBroker) -> None:
        super().__init__()
        self.broker = broker
        self.acceptor: Any = None
        self._roles: dict[Link, _Role] = {}
        self._connections: set[Any] = set()
        self._next_consumer: dict[str, int] = {}

    # -- connection lifecycle --------------------------------------------------------------

    @_logged
    def on_connection_bound(self, event: Any) -> None:
        sasl = event.transport.sasl()
        sasl.allow_insecure_mechs = True
        sasl.allowed_mechs("ANONYMOUS")
        self._connections.add(event.connection)

    @_logged
    def on_connection_remote_open(self, event: Any) -> None:
        connection = event.connection
        if connection.state & Endpoint.LOCAL_UNINIT:
            connection.open()

    @_logged
    def on_session_remote_open(self, event: Any) -> None:
        session = event.session
        if session.state & Endpoint.LOCAL_UNINIT:
            session.open()

    @_logged
    def on_link_remote_open(self, event: Any) -> None:
        link = event.link
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        address = link.remote_source.address if link.is_sender else link.remote_target.address
        path = entity_path(address)
        role = self._role_for(link, path)
        if role is None:
            link.condition = Condition(
                NOT_FOUND, f"The messaging entity '{path}' could not be found."
            )
            link.open()
            link.close()
            return
        if role.kind == "receive" and self.broker.namespace.store(path).settings.requires_session:
            try:
                self._lock_session(link, role)
            except NotAllowed as error:
                link.condition = Condition(NOT_ALLOWED, str(error))
                link.open()
                link.close()
                return
            except SessionUnavailable as error:
                link.condition = Condition(
                    SESSION_CANNOT_BE_LOCKED if role.session else TIMEOUT, str(error)
                )
                link.open()
                link.close()
                return
        self._roles[link] = role
        if link.is_sender:
            link.snd_settle_mode = link.remote_snd_settle_mode
            link.rcv_settle_mode = link.remote_rcv_settle_mode
        else:
            link.max_message_size = MAX_MESSAGE_SIZE
        link.open()
        if link.is_receiver:
            link.flow(_RECEIVER_CREDIT)

    def _role_for(self, link: Any, path: str) -> _Role | None:
        namespace = self.broker.namespace
        if path == CBS_NODE:
            return _Role("cbs", path)
        if path.lower().endswith(MANAGEMENT_SUFFIX):
            entity = path[: -len(MANAGEMENT_SUFFIX)]
            known = namespace.has_store(entity) or namespace.has_target(entity)
            return _Role("management", entity) if known else None
        if link.is_receiver:  # the client sends
            return _Role("send", path) if namespace.has_target(path) else None
        if not namespace.has_store(path):
            return None
        presettled = link.remote_snd_settle_mode == Link.SND_SETTLED
        return _Role("receive", path, peek_lock=not presettled)

    def _lock_session(self, link: Any, role: _Role) -> None:
        """Lock the session the receiver's filter names (null: the next free one) and say
        which one and until when on the attach, as Service Bus does."""
        asked, wanted = _session_filter(link.remote_source.filter)
        if not asked:
            raise NotAllowed(
                "It is not possible for an entity that requires sessions to create a "
                f"non-sessionful message receiver ({role.path})."
            )
        role.session = wanted  # named in the refusal: cannot be locked vs none free (timeout)
        session, until = self.broker.namespace.lock_session(role.path, wanted, link)
        role.session = session
        link.source.filter.clear()
        link.source.filter.put_map()
        link.source.filter.enter()
        link.source.filter.put_symbol(SESSION_FILTER)
        link.source.filter.put_string(session)
        link.source.filter.exit()
        link.properties = {LOCKED_UNTIL_UTC: _ticks(until)}  # a Python int is an AMQP long

    @_logged
    def on_link_remote_close(self, event: Any) -> None:
        role = self._roles.pop(event.link, None)
        if role is not None and role.session is not None:
            self.broker.namespace.release_sessions(role.path, event.link)
        if event.link.state & Endpoint.LOCAL_ACTIVE:
            event.link.close()

    @_logged
    def on_session_remote_close(self, event: Any) -> None:
        if event.session.state & Endpoint.LOCAL_ACTIVE:
            event.session.close()

    @_logged
    def on_connection_remote_close(self, event: Any) -> None:
        self._forget(event.connection)
        if event.connection.state & Endpoint.LOCAL_ACTIVE:
            event.connection.close()

    @_logged
    def on_transport_closed(self, event: Any) -> None:
        if event.connection is not None:
            self._forget(event.connection)

    def _forget(self, connection: Any) -> None:
        self._connections.discard(connection)
        for link in [link for link in self._roles if link.connection == connection]:
            role = self._roles.pop(link)
            if role.session is not None:
                self.broker.namespace.release_sessions(role.path, link)

    # -- timer: the clock, and the stop request --------------------------------------------

    @_logged
    def on_timer_task(self, event: Any) -> None:
        if self.broker._stop_requested.is_set():
            self._shut_down()
            return
        try:
            for store in self.broker.namespace.tick():
                self._pump(store)
        finally:
            event.container.schedule(self.broker._tick_seconds, self)

    def _shut_down(self) -> None:
        self.acceptor.close()
        for connection in list(self._connections):
            if connection.state & Endpoint.LOCAL_ACTIVE:
                connection.close()
            transport = connection.transport
            if transport is not None:
                transport.close_tail()
        self._roles.clear()
        self._connections.clear()

    # -- flow and deliveries ---------------------------------------------------------------

    @_logged
    def on_link_flow(self, event: Any) -> None:
        link = event.link
        role = self._roles.get(link)
        if role is None or not link.is_sender:
            return
        if role.kind == "receive":
            self._send_available(link, role)
        else:
            self._flush_replies(link, role)
        if link.drain_mode and link.credit > 0:
            link.drained()

    @_logged
    def on_delivery(self, event: Any) -> None:
        delivery = event.delivery
        link = delivery.link
        role = self._roles.get(link)
        if link.is_receiver:
            if delivery.partial or not delivery.readable:
                return
            payload = bytes(link.recv(delivery.pending))
            link.advance()
            if role is None:
                delivery.update(Delivery.RELEASED)
            else:
                self._incoming(link, role, delivery, payload)
            delivery.settle()
            if link.credit < _RECEIVER_CREDIT // 2:
                link.flow(_RECEIVER_CREDIT - link.credit)
        elif delivery.updated and role is not None and role.kind == "receive":
            self._settlement(role, delivery)
        elif delivery.remote.settled:
            delivery.settle()

    def _incoming(self, link: Any, role: _Role, delivery: Any, payload: bytes) -> None:
        if role.kind == "send":
            try:
                touched = self.broker.namespace.send(role.path, payload)
            except (EntityNotFound, NotAllowed) as error:
                refused = NOT_FOUND if isinstance(error, EntityNotFound) else NOT_ALLOWED
                delivery.local.condition = _refusal(refused, str(error))
                delivery.update(Delivery.REJECTED)
                return
            delivery.update(Delivery.ACCEPTED)
            for store in touched:
                self._pump(store)
            return
        request = Message()
        request.decode(payload)
        delivery.update(Delivery.ACCEPTED)
        if role.kind == "cbs":
            reply = Message(
                correlation_id=request.id,
                properties={"status-code": 200, "status-description": "OK"},
            )
        else:
            status, description, body, condition, touched = management.answer(
                self.broker.namespace, role.path, request
            )
            properties: dict[str, Any] = {"statusCode": status, "statusDescription": description}
            if condition is not None:
                properties["errorCondition"] = symbol(condition)
            reply = Message(correlation_id=request.id, properties=properties, body=body)
            for store in touched:
                self._pump(store)
        self._reply(link, role, request.reply_to, bytes(reply.encode()))

    def _reply(self, request_link: Any, role: _Role, reply_to: str | None, payload: bytes) -> None:
        """Send a node's response on the client's receiving link that `reply_to` names.

        `reply_to` is the link's name (Node SDK) or its address (Python SDK); without one, any
        receiving link of the same node on the connection.
        """
        candidates = [
            (link, other)
            for link, other in self._roles.items()
            if link.is_sender
            and other.kind == role.kind
            and link.connection == request_link.connection
        ]
        if reply_to:
            wanted = entity_path(reply_to)
            candidates = [
                (link, other)
                for link, other in candidates
                if link.name == reply_to
                or wanted
                in (
                    entity_path(link.remote_target.address),
                    entity_path(link.remote_source.address),
                )
            ]
        if not candidates:
            LOG.warning(
                "service bus broker: no reply link %r for a %s request", reply_to, role.kind
            )
            return
        link, other = next(
            ((link, other) for link, other in candidates if link.name == reply_to), candidates[0]
        )
        other.pending_replies.append(payload)
        self._flush_replies(link, other)

    def _flush_replies(self, link: Any, role: _Role) -> None:
        while role.pending_replies and link.credit > 0:
            delivery = link.delivery(uuid.uuid4().bytes)
            link.send(role.pending_replies.pop(0))
            link.advance()
            delivery.settle()

    def _pump(self, store: MessageStore) -> None:
        """Hand available messages of `store` to its receivers with credit, round-robin."""
        key = store.path.lower()
        consumers = [
            (link, role)
            for link, role in self._roles.items()
            if role.kind == "receive" and role.path.lower() == key
        ]
        if not consumers:
            return
        start = self._next_consumer.get(key, 0) % len(consumers)
        self._next_consumer[key] = start + 1
        for link, role in consumers[start:] + consumers[:start]:
            if not self._send_available(link, role):
                return

    def _send_available(self, link: Any, role: _Role) -> bool:
        """Send while the link has credit; False when the store ran out of messages."""
        while link.credit > 0 and link.state & Endpoint.LOCAL_ACTIVE:
            item = self.broker.namespace.take(role.path, role.peek_lock, role.session)
            if item is None:
                return False
            tag = (item.lock_token or uuid.uuid4()).bytes_le
            delivery = link.delivery(tag)
            # proton hands tags back as decoded text; keep the token on the delivery itself
            delivery.lock_token = item.lock_token
            link.send(item.payload)
            link.advance()
            if not role.peek_lock:
                delivery.settle()
        return True

    def _settlement(self, role: _Role, delivery: Any) -> None:
        """Apply the receiver's outcome and echo it settled (the SDK waits for that echo)."""
        namespace = self.broker.namespace
        token = getattr(delivery, "lock_token", None)
        if token is None:
            delivery.settle()
            return
        state = delivery.remote_state
        remote = delivery.remote
        touched: set[MessageStore] = set()
        try:
            if state == Delivery.ACCEPTED:
                namespace.complete(role.path, token)
            elif state == Delivery.REJECTED:
                info = (remote.condition.info if remote.condition else None) or {}
                touched = namespace.dead_letter(
                    role.path,
                    token,
                    management.text(info.get("DeadLetterReason")),
                    management.text(info.get("DeadLetterErrorDescription")),
                )
            elif state == Delivery.MODIFIED and remote.undeliverable:
                namespace.defer(
                    role.path, token, management.modified_properties(remote.annotations)
                )
            elif state == Delivery.MODIFIED:
                # Service Bus counts every abandon, whether or not delivery-failed is set:
                # the Node SDK abandons with undeliverable-here false and no delivery-failed.
                touched = namespace.abandon(
                    role.path, token, management.modified_properties(remote.annotations)
                )
            elif state == Delivery.RELEASED:
                touched = namespace.release(role.path, token)
            else:
                return  # a non-terminal state (received): wait for the outcome
        except LockLost as error:
            delivery.local.condition = Condition(LOCK_LOST, str(error))
            state = Delivery.REJECTED
        delivery.update(state)
        delivery.settle()
        for store in touched:
            self._pump(store)


def _session_filter(data: Data) -> tuple[bool, str | None]:
    """Whether the receiver's source filter names a session, and which (None: any free one)."""
    data.rewind()
    if not data.next():
        return False, None
    found = data.get_object()
    if not isinstance(found, dict) or SESSION_FILTER not in found:
        return False, None
    value = found[SESSION_FILTER]
    if isinstance(value, Described):
        value = value.value
    return True, None if value is None else management.text(value)


def _refusal(condition: str, description: str) -> Condition:
    """A rejected send's error with its info map written: the Python SDK reads all three
    fields of the error (`_on_send_complete_async`), and proton leaves out a trailing null."""
    tracking_id = str(uuid.uuid4())
    info = {symbol("com.microsoft:tracking-id"): tracking_id}
    return Condition(condition, f"{description} TrackingId:{tracking_id}", cast(Any, info))


def _ticks(epoch: float) -> int:
    return _EPOCH_TICKS + int(epoch * 10_000_000)
