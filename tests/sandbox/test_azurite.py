"""Azurite through the real azure-storage-queue client.

Covers: Azurite starts from node_modules on ephemeral ports with its data in a temp dir; a queue
message sent is received with its body intact, its dequeue count rising on redelivery; stopping
leaves no process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from sandbox.azurite import Azurite


def test_queue_send_receive_and_redelivery(azurite: Azurite) -> None:
    queue = QueueClient.from_connection_string(azurite.connection_string, "provisioning-requests")
    with queue:
        queue.create_queue()
        queue.send_message('{"apiVersion": "gpuprov/v1"}')
        [first] = queue.receive_messages(visibility_timeout=1, max_messages=1)
        assert first.content == '{"apiVersion": "gpuprov/v1"}'
        assert first.dequeue_count == 1
        time.sleep(1.5)
        [again] = queue.receive_messages(visibility_timeout=30, max_messages=1)
        assert again.id == first.id
        assert again.dequeue_count == 2
        queue.delete_message(again)
        assert list(queue.receive_messages(max_messages=1)) == []


def test_data_stays_in_the_given_directory(azurite: Azurite) -> None:
    assert azurite.data_dir.exists()
    assert any(azurite.data_dir.iterdir())
    assert not (Path.cwd() / "__azurite_db_queue__.json").exists()


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    server = Azurite(tmp_path)
    server.start()
    pid = server.pid
    assert pid is not None
    server.stop()
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
