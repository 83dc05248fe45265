"""The event publisher with the real azure-servicebus client against the sandbox's broker.

Covers: a published event arrives on the `all` subscription with message id = event id,
correlation id = request id, subject = step, the filter properties and the CloudEvents envelope
intact; a `failed` event also reaches `failures` and the final `completed` reaches `completed`
(and a success reaches neither); the same event published twice arrives once (duplicate
detection); two attempts of a repeated step both arrive; a 1 MB log tail still arrives, cut;
the worker's publisher is one object with one sender across publishes, also from many threads
at once; an unreachable
namespace (by connection string, or by name with the app's identity) raises a transient
StepError within a bounded time, and the next publish opens a new sender; after the network to
the broker broke (connections cut and refused), publishing raises a transient StepError and,
once the broker is reachable again, succeeds on a new sender.
"""

from __future__ import annotations

import contextlib
import gc
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusReceivedMessage

from sandbox.clock import ManualClock
from sandbox.servicebus import ServiceBusBroker
from shared.errors import CONNECTION_FAILED, StepError
from shared.events import (
    CONTENT_TYPE,
    EventPublisher,
    Outcome,
    Status,
    StepName,
    close_event_publisher,
    event_publisher,
)
from shared.settings import Settings
from tests.sandbox_fixtures import running_broker

TOPIC = "gpu-provisioning-events"
OWNER = "team-a"
WHEN = datetime(2026, 11, 23, 21, 40, 5, tzinfo=UTC)
AMQPS_PORT = 5671


@pytest.fixture(scope="module")
def broker() -> Iterator[ServiceBusBroker]:
    """One broker for the module, its message times on a clock that stands still."""
    yield from running_broker(clock=ManualClock())


@pytest.fixture(scope="module")
def client(broker: ServiceBusBroker) -> Iterator[ServiceBusClient]:
    """The subscriber side; closed before the broker stops."""
    with ServiceBusClient.from_connection_string(broker.connection_string) as sb:
        yield sb


@pytest.fixture
def settings(broker: ServiceBusBroker) -> Settings:
    return Settings.from_env(
        {"ServiceBusConnection": broker.connection_string, "GPUPROV_OWNER": OWNER}
    )


@pytest.fixture
def publisher(settings: Settings, client: ServiceBusClient) -> Iterator[EventPublisher]:
    """The worker's shared publisher, closed (with its sender) after each test."""
    yield event_publisher(settings)
    close_event_publisher()


def _outcome(request_id: str, step: StepName, status: Status, **fields: Any) -> Outcome:
    return Outcome(request_id=request_id, step=step, status=status, time=WHEN, **fields)


def _receive(
    client: ServiceBusClient, subscription: str, request_id: str, expected: int
) -> list[ServiceBusReceivedMessage]:
    """This request's messages on a subscription: `expected` of them, then a short wait proving
    there are no more. Other tests' leftovers are completed and ignored."""
    mine: list[ServiceBusReceivedMessage] = []
    deadline = time.monotonic() + 10
    with client.get_subscription_receiver(TOPIC, subscription) as receiver:
        while time.monotonic() < deadline:
            wait = 5 if len(mine) < expected else 0.5
            batch = receiver.receive_messages(max_message_count=10, max_wait_time=wait)
            for message in batch:
                receiver.complete_message(message)
                if message.correlation_id == request_id:
                    mine.append(message)
            if len(mine) >= expected and not batch:
                break
    return mine


def _envelope(message: ServiceBusReceivedMessage) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(b"".join(message.body))
    return decoded


def test_event_arrives_with_ids_properties_and_envelope(
    publisher: EventPublisher, client: ServiceBusClient
) -> None:
    sent_id = publisher.publish(
        _outcome(
            "req-arrives",
            "create-node-pool",
            "succeeded",
            message="pool gpu ready",
            details={"durations": {"create-node-pool": 312.5}, "vmSize": "Standard_NC4as_T4_v3"},
        )
    )

    [received] = _receive(client, "all", "req-arrives", 1)
    assert sent_id == "req-arrives:create-node-pool:succeeded"
    assert received.message_id == sent_id
    assert received.correlation_id == "req-arrives"
    assert received.subject == "create-node-pool"
    assert received.content_type == CONTENT_TYPE
    assert received.application_properties == {
        b"requestId": b"req-arrives",
        b"step": b"create-node-pool",
        b"status": b"succeeded",
    }
    assert _envelope(received) == {
        "specversion": "1.0",
        "id": sent_id,
        "source": "/gpuprov/team-a",
        "type": "gpuprovisioner.step.succeeded",
        "subject": "req-arrives",
        "time": "2026-11-23T21:40:05Z",
        "datacontenttype": "application/json",
        "data": {
            "step": "create-node-pool",
            "status": "succeeded",
            "attempt": 1,
            "message": "pool gpu ready",
            "errorCode": None,
            "error": None,
            "details": {
                "durations": {"create-node-pool": 312.5},
                "vmSize": "Standard_NC4as_T4_v3",
            },
        },
    }


def test_failures_and_completion_reach_their_subscriptions(
    publisher: EventPublisher, client: ServiceBusClient
) -> None:
    error = StepError("quota", "QuotaExceeded", "no vCPUs left").to_wire()
    publisher.publish(_outcome("req-routes", "run-job", "succeeded"))
    publisher.publish(_outcome("req-routes", "create-node-pool", "failed", error=error))
    publisher.publish(_outcome("req-routes", "failed", "failed", error=error))
    publisher.publish(_outcome("req-routes", "completed", "completed"))

    everything = _receive(client, "all", "req-routes", 4)
    failures = _receive(client, "failures", "req-routes", 2)
    completed = _receive(client, "completed", "req-routes", 1)

    assert len(everything) == 4
    assert sorted(str(m.message_id) for m in failures) == [
        "req-routes:create-node-pool:failed",
        "req-routes:failed:failed",
    ]
    assert _envelope(failures[0])["data"]["errorCode"] == "QuotaExceeded"
    assert [m.message_id for m in completed] == ["req-routes:completed:completed"]


def test_the_same_event_twice_arrives_once(
    publisher: EventPublisher, client: ServiceBusClient
) -> None:
    replayed = _outcome("req-twice", "install-device-plugin", "succeeded")
    assert publisher.publish(replayed) == publisher.publish(replayed)

    received = _receive(client, "all", "req-twice", 1)
    assert [m.message_id for m in received] == ["req-twice:install-device-plugin:succeeded"]


def test_attempts_of_a_repeated_step_all_arrive(
    publisher: EventPublisher, client: ServiceBusClient
) -> None:
    for attempt in (1, 2):
        publisher.publish(_outcome("req-retry", "verify-gpus", "failed", attempt=attempt))

    received = _receive(client, "all", "req-retry", 2)
    assert sorted(str(m.message_id) for m in received) == [
        "req-retry:verify-gpus:failed",
        "req-retry:verify-gpus:failed:2",
    ]
    assert sorted(_envelope(m)["data"]["attempt"] for m in received) == [1, 2]


def test_megabyte_log_tail_arrives_cut_to_its_end(
    publisher: EventPublisher, client: ServiceBusClient
) -> None:
    log = "".join(f"Accuracy at step {step}: 0.9{step:05d}\n" for step in range(40_000))
    publisher.publish(_outcome("req-big", "run-job", "succeeded", details={"logTail": log}))

    [received] = _receive(client, "all", "req-big", 1)
    tail = _envelope(received)["data"]["details"]["logTail"]
    assert tail["truncated"] is True
    assert tail["originalBytes"] == len(log.encode()) > 1024 * 1024
    assert tail["text"].endswith("Accuracy at step 39999: 0.939999\n")


def test_outcomes_sent_together_arrive_in_order_across_batches(
    publisher: EventPublisher, client: ServiceBusClient
) -> None:
    """A step's end and the next one's start go out in one activity (functions/engine.py
    `flush`); three events near the 256 KB limit cannot share one batch, and still all arrive,
    in order, under the ids returned."""
    log = "x" * (1024 * 1024)
    steps: list[StepName] = ["create-node-pool", "install-device-plugin", "verify-gpus"]
    outcomes = [_outcome("req-many", step, "succeeded", details={"logTail": log}) for step in steps]

    ids = publisher.publish_all(outcomes)

    received = _receive(client, "all", "req-many", 3)
    assert [str(m.message_id) for m in received] == ids
    assert [m.subject for m in received] == steps


def test_one_sender_serves_the_whole_worker(
    publisher: EventPublisher, settings: Settings, client: ServiceBusClient
) -> None:
    for status in ("started", "succeeded"):
        assert event_publisher(settings) is publisher
        publisher.publish(_outcome("req-reuse", "cleanup", status))

    assert len(_receive(client, "all", "req-reuse", 2)) == 2
    assert publisher.opens == 1


def test_publishes_from_many_threads_share_the_sender(
    publisher: EventPublisher, settings: Settings, client: ServiceBusClient
) -> None:
    steps: list[StepName] = ["create-cluster", "create-node-pool", "verify-gpus", "run-job"]

    def publish_both(step: StepName) -> None:
        for status in ("started", "succeeded"):
            event_publisher(settings).publish(_outcome("req-threads", step, status))

    workers = [threading.Thread(target=publish_both, args=(step,)) for step in steps]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    assert len(_receive(client, "all", "req-threads", 8)) == 8
    assert publisher.opens == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _unreachable_by_connection_string() -> dict[str, str]:
    return {
        "ServiceBusConnection": (
            f"Endpoint=sb://127.0.0.1:{_closed_port()};SharedAccessKeyName=k;"
            "SharedAccessKey=v;UseDevelopmentEmulator=true"
        )
    }


def _unreachable_by_identity() -> dict[str, str]:
    """The identity-based path (AMQP over TLS on 5671, a token from credential_for)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", AMQPS_PORT))
        except OSError:
            pytest.skip(f"something listens on 127.0.0.1:{AMQPS_PORT}")
    return {
        "ServiceBusConnection__fullyQualifiedNamespace": "127.0.0.1",
        "GPUPROV_STATIC_TOKEN": "sandbox-token",
    }


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param(_unreachable_by_connection_string, id="connection-string"),
        pytest.param(_unreachable_by_identity, id="identity-namespace"),
    ],
)
def test_unreachable_namespace_is_a_transient_error_soon(
    environment: Callable[[], dict[str, str]],
) -> None:
    unreachable = Settings.from_env(environment())
    outcome = _outcome("req-down", "accepted", "accepted")
    with EventPublisher(
        unreachable, retry_total=1, retry_backoff_factor=0.1, retry_backoff_max=0.5
    ) as publisher:
        for tries in (1, 2):
            started = time.monotonic()
            with pytest.raises(StepError) as raised:
                publisher.publish(outcome)
            assert time.monotonic() - started < 10
            assert (raised.value.kind, raised.value.code) == ("transient", CONNECTION_FAILED)
            assert publisher.opens == tries  # the broken sender was dropped, a new one tried


class CuttableLink:
    """A TCP forwarder to the broker whose network can fail: `cut()` drops every connection and
    refuses new ones until `restore()`, like a namespace briefly out of reach."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._refusing = False
        self._stopping = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def connection_string(self) -> str:
        return (
            f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName=k;SharedAccessKey=v;"
            "UseDevelopmentEmulator=true"
        )

    def cut(self) -> None:
        with self._lock:
            self._refusing = True
            dropped, self._open = self._open, []
        for sock in dropped:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._refusing = False

    def stop(self) -> None:
        self._stopping = True
        self.cut()
        _close(self._listener)
        for thread in [self._acceptor, *self._threads]:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                inbound, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._refusing:
                    _close(inbound)
                    continue
                outbound = socket.create_connection(("127.0.0.1", self._target_port))
                self._open += [inbound, outbound]
                pumps = [
                    threading.Thread(target=_pump, args=pair, daemon=True)
                    for pair in ((inbound, outbound), (outbound, inbound))
                ]
                self._threads += pumps
            for pump in pumps:
                pump.start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass  # the other direction or cut() closed the pair
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected, or already shut down
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def link(broker: ServiceBusBroker) -> Iterator[CuttableLink]:
    proxy = CuttableLink(broker.port)
    yield proxy
    proxy.stop()


# azure-servicebus's pyamqp skips closing the socket of a connection that broke (its close
# handshake fails, the state becomes END, and _disconnect then returns early: Azure/azure-sdk-for-
# python#46830), so the sockets the cut left behind are collected here, with that warning allowed.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)
def test_sender_broken_by_the_network_is_replaced(
    link: CuttableLink, client: ServiceBusClient
) -> None:
    settings = Settings.from_env({"ServiceBusConnection": link.connection_string()})
    with EventPublisher(
        settings, retry_total=1, retry_backoff_factor=0.1, retry_backoff_max=0.5
    ) as publisher:
        publisher.publish(_outcome("req-blip", "create-cluster", "started"))
        link.cut()
        with pytest.raises(StepError) as raised:
            publisher.publish(_outcome("req-blip", "create-cluster", "succeeded"))
        assert raised.value.kind == "transient"
        del raised  # its traceback holds the broken connection
        link.restore()
        publisher.publish(_outcome("req-blip", "create-cluster", "succeeded"))
        assert publisher.opens == 2
    gc.collect()

    received = _receive(client, "all", "req-blip", 2)
    assert sorted(str(m.message_id) for m in received) == [
        "req-blip:create-cluster:started",
        "req-blip:create-cluster:succeeded",
    ]
