"""`gpuprov submit`, `watch` and `poison` against Azurite and the local Service Bus broker.

Covers: an invalid request refused with its errors and exit 2, nothing queued; a valid one queued
normalised, its id printed; `watch --request` printing that request's events (and no other's)
from the topic, then the summary, exit 0 on `completed`; `poison list` and `poison replay`
moving a parked message back onto the requests queue; a missing connection named in one line.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from gpuprov.cli import main
from sandbox.azurite import Azurite
from sandbox.servicebus import ServiceBusBroker
from shared.events import EventPublisher, Outcome
from shared.settings import Settings
from tests.builders import SEED_PATH

QUEUE, POISON = "provisioning-requests", "provisioning-requests-poison"


@pytest.fixture
def settings_file(tmp_path: Path, storage: str, broker: ServiceBusBroker) -> Path:
    values = {
        "AzureWebJobsStorage": storage,
        "ServiceBusConnection": broker.connection_string,
    }
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return path


def queued(azurite: Azurite, queue: str = QUEUE) -> list[str]:
    with QueueClient.from_connection_string(azurite.connection_string, queue) as client:
        return [str(m.content) for m in client.peek_messages(max_messages=32)]


def test_submit_refuses_an_invalid_request(
    settings_file: Path, azurite: Azurite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"apiVersion": "gpuprov/v1", "location": 42}')
    assert main(["submit", str(bad), "--settings", str(settings_file)]) == 2
    captured = capsys.readouterr()
    assert any(p["path"] == "$.location" for p in json.loads(captured.out))
    assert "nothing sent" in captured.err
    assert queued(azurite) == []


def test_submit_refuses_what_a_storage_queue_cannot_carry(
    settings_file: Path, azurite: Azurite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Put Message: a message must fit an XML request, so Azure refuses control characters;
    Azurite stores them and then fails every read of the queue: never send one."""
    odd = tmp_path / "odd.json"
    odd.write_bytes(b"\x01\x02\x03{")
    assert main(["submit", str(odd), "--no-check", "--settings", str(settings_file)]) == 2
    captured = capsys.readouterr()
    [problem] = json.loads(captured.out)
    assert "U+0001 at offset 0" in problem["message"]
    assert "--via servicebus" in problem["message"]
    assert "nothing sent" in captured.err
    assert queued(azurite) == []


def test_submit_queues_the_normalised_request(
    settings_file: Path, azurite: Azurite, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", str(SEED_PATH), "--settings", str(settings_file)]) == 0
    assert capsys.readouterr().out.strip() == "seed-walkthrough-001"
    (message,) = queued(azurite)
    assert json.loads(message)["requestId"] == "seed-walkthrough-001"
    assert json.loads(message)["cleanup"]["deleteCluster"] is True


def test_watch_follows_one_request_to_its_end(
    settings_file: Path, broker: ServiceBusBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    summary: dict[str, Any] = {
        "durations": {"create-cluster": 480.0},
        "jobResult": {"accuracy": 0.95, "step": 490, "gpu": "Tesla T4"},
        "left": [],
        "expiresAt": None,
    }
    outcomes = [
        Outcome(request_id="other", step="accepted", status="accepted", time=now),
        Outcome(
            request_id="mine",
            step="accepted",
            status="accepted",
            time=now,
            message="accepted from the storage queue",
        ),
        Outcome(request_id="mine", step="create-cluster", status="started", time=now),
        Outcome(
            request_id="mine",
            step="completed",
            status="completed",
            details=summary,
            message="GPUs proven",
            time=now,
        ),
    ]
    settings = Settings.from_env({"ServiceBusConnection": broker.connection_string})
    with EventPublisher(settings) as publisher:
        for outcome in outcomes:
            publisher.publish(outcome)

    code = main(["watch", "--request", "mine", "--settings", str(settings_file), "--timeout", "30"])

    out = capsys.readouterr().out
    assert code == 0
    assert [line.split()[:4] for line in out.splitlines()[:3]] == [
        ["replayed", "→", "accepted", "from"], ["replayed", "…", "create-cluster", "started"],
        ["replayed", "✓", "completed", "GPUs"],
    ]  # fmt: skip
    assert "other" not in out
    assert "job: accuracy 0.95 at step 490 on Tesla T4" in out
    assert "outcome: completed" in out


def publish(broker: ServiceBusBroker, *outcomes: Outcome) -> None:
    settings = Settings.from_env({"ServiceBusConnection": broker.connection_string})
    with EventPublisher(settings) as publisher:
        for outcome in outcomes:
            publisher.publish(outcome)


def test_watch_is_not_ended_by_a_rejection_of_another_message(
    settings_file: Path, broker: ServiceBusBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anyone who can write to a queue can get a `rejected` event under a running request's
    id; once the request's run was accepted, only its own end ends the watch."""
    now = datetime.now(UTC)
    publish(
        broker,
        Outcome(request_id="run-1", step="accepted", status="accepted", time=now),
        Outcome(request_id="run-1", step="rejected", status="rejected", time=now,
                message="rejected: $.location: not a string", message_id="foreign-1"),
        Outcome(request_id="run-1", step="completed", status="completed", time=now),
    )  # fmt: skip

    code = main(["watch", "--request", "run-1", "--settings", str(settings_file),
                 "--timeout", "30"])  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0
    assert "another message with this request id; the run goes on" in out
    assert out.splitlines()[2].split()[1:3] == ["✓", "completed"]


def test_watching_every_request_notes_a_foreign_rejection_only_for_its_own_run(
    settings_file: Path, broker: ServiceBusBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    publish(
        broker,
        Outcome(request_id="a-1", step="accepted", status="accepted", time=now),
        Outcome(request_id="b-1", step="rejected", status="rejected", time=now, message_id="m"),
    )

    assert main(["watch", "--settings", str(settings_file), "--timeout", "3"]) == 1

    rejected = [line for line in capsys.readouterr().out.splitlines() if "b-1" in line]
    assert len(rejected) == 1
    assert "another message" not in rejected[0]


def test_watch_marks_what_it_replays_from_before_it_began(
    settings_file: Path, broker: ServiceBusBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    publish(broker, Outcome(request_id="old-1", step="accepted", status="accepted", time=now))
    later = threading.Timer(3.0, publish, args=(broker, Outcome(
        request_id="old-1", step="completed", status="completed", time=now)))  # fmt: skip
    later.start()
    try:
        code = main(["watch", "--request", "old-1", "--settings", str(settings_file),
                     "--timeout", "60"])  # fmt: skip
    finally:
        later.join()

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].split()[:3] == ["replayed", "→", "accepted"]
    assert lines[1].split()[1:3] == ["✓", "completed"]
    assert lines[1].split()[0].endswith("s")  # timed: it came while watching


def test_poison_list_and_replay(
    settings_file: Path, azurite: Azurite, capsys: pytest.CaptureFixture[str]
) -> None:
    with QueueClient.from_connection_string(azurite.connection_string, POISON) as client:
        client.send_message('{"requestId": "parked-1"}')

    assert main(["poison", "list", "--settings", str(settings_file)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("parked-1  message ")
    assert '{"requestId": "parked-1"}' in listed[0]
    assert main(["poison", "replay", "--settings", str(settings_file)]) == 0
    assert "moved 1 message(s)" in capsys.readouterr().out
    assert queued(azurite, POISON) == []
    assert queued(azurite) == ['{"requestId": "parked-1"}']
    assert main(["poison", "list", "--settings", str(settings_file)]) == 0
    assert capsys.readouterr().out == f"{POISON} is empty: nothing is parked\n"


def test_a_missing_connection_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "local.settings.json"
    empty.write_text('{"Values": {}}')
    assert main(["submit", str(SEED_PATH), "--settings", str(empty)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gpuprov submit: no storage account: set AzureWebJobsStorage")
    assert len(err.strip().splitlines()) == 1
