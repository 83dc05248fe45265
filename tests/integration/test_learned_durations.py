"""Learned wait durations (shared/durations.py) in Blob storage (Azurite), with the real SDK.

Aspects covered:
- nothing learned yet: no expectation, the fixed guesses stay;
- a wait teaches the time of its last check that saw it pending (not the detection latency
  after it), or 90 % of its first check when that one saw it done;
- each run folds its waits into a moving average per location (and per VM size for a pool);
  the next request in that location is expected at 90 % of it, other locations and sizes not;
- two runs ending at once both count (the etag makes the second read again);
- a store that cannot be reached, or a blob that is not JSON, never fails a request: reading
  gives nothing, and the next write replaces what was unreadable.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import ContainerClient

from sandbox.azurite import Azurite, connection_string
from shared.durations import (
    BLOB,
    CONTAINER,
    expected_for,
    learned_options,
    learned_seconds,
    remember,
)
from shared.sequence import EXPECTED_SECONDS
from tests.builders import contract_request

T4 = "Standard_NC4as_T4_v3"
A100 = "Standard_NC24ads_A100_v4"


@pytest.fixture
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


def values(azurite: Azurite) -> dict[str, str]:
    return {"AzureWebJobsStorage": azurite.connection_string}


def test_a_wait_teaches_its_last_pending_check_not_its_detection_latency() -> None:
    began = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    pending, seen = began + timedelta(seconds=300), began + timedelta(seconds=330)
    assert learned_seconds(began, pending, seen) == 300
    assert learned_seconds(began, None, began + timedelta(seconds=200)) == 180


def test_nothing_learned_keeps_the_fixed_guesses(azurite: Azurite) -> None:
    request = contract_request()
    assert expected_for(values(azurite), "eastus", [T4]) == {}
    assert learned_options(values(azurite), request).expected_seconds == EXPECTED_SECONDS


def test_runs_teach_a_moving_average_per_location_and_pool_size(azurite: Azurite) -> None:
    settings = values(azurite)
    first = {"start_create_cluster": 500.0, f"start_create_node_pool {T4}": 400.0}
    assert remember(settings, "eastus", first)
    assert remember(settings, "EastUS", {"start_create_cluster": 600.0})

    learned = expected_for(settings, "eastus", [T4, A100])
    average = 0.3 * 600 + 0.7 * 500  # the newest run weighs 30 %
    assert learned == {
        "start_create_cluster": round(0.9 * average),
        f"start_create_node_pool {T4}": 360,
    }
    assert expected_for(settings, "westeurope", [T4]) == {}, "another region learns on its own"
    request = contract_request({"location": "eastus", "nodePool": {"vmSize": T4}})
    options = learned_options(settings, request)
    assert options.expected_seconds["start_create_cluster"] == round(0.9 * average)
    assert options.expected_seconds[f"start_create_node_pool {T4}"] == 360
    assert (
        options.expected_seconds["start_delete_cluster"] == EXPECTED_SECONDS["start_delete_cluster"]
    )


def test_runs_ending_at_once_are_all_counted(azurite: Azurite) -> None:
    settings = values(azurite)
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                remember(settings, "eastus", {"check_device_plugin": 20.0})
            )
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 4
    with ContainerClient.from_connection_string(azurite.connection_string, CONTAINER) as c:
        stored = c.get_blob_client(BLOB).download_blob().readall()
    assert b'"runs": 4' in stored


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_or_unreadable_store_never_fails_a_request(azurite: Azurite) -> None:
    port = _closed_port()
    unreachable = {"AzureWebJobsStorage": connection_string({**azurite.ports, "blob": port})}
    request = contract_request()
    assert learned_options(unreachable, request).expected_seconds == EXPECTED_SECONDS
    assert remember(unreachable, "eastus", {"start_create_cluster": 500.0}) is False
    assert learned_options({}, request).expected_seconds == EXPECTED_SECONDS

    settings = values(azurite)
    with ContainerClient.from_connection_string(azurite.connection_string, CONTAINER) as c:
        c.create_container()
        c.upload_blob(BLOB, b"not json", overwrite=True)
    assert expected_for(settings, "eastus", [T4]) == {}
    assert remember(settings, "eastus", {"start_create_cluster": 500.0})
    assert expected_for(settings, "eastus", [T4]) == {"start_create_cluster": 450}
