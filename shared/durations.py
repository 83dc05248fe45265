"""What each wait took, learned from this deployment's earlier runs, so the first check of a
wait lands near what the same operation took lately rather than at a fixed low guess
(`RunOptions.expected_seconds`).

One blob, `learned/durations.json` in the app's storage account (shared/blobs.py): per key (the
activity that starts or checks the wait, the location, and for a node pool its VM size) a
moving average of the seconds the wait took, and how many runs it has seen. It is read at intake
into the orchestration input (the orchestrator reads nothing) and written when a run ends. Both
are best effort: a store that cannot be read or written leaves the fixed guesses and never fails
a request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.blobs import storage_reason

if TYPE_CHECKING:
    from shared.request import ProvisionRequest
    from shared.sequence import RunOptions

CONTAINER = "learned"
BLOB = "durations.json"
LEARNED = frozenset(
    {
        "start_create_cluster",
        "start_create_node_pool",
        "start_delete_cluster",
        "start_delete_node_pool",
        "check_device_plugin",
    }
)
"""The waits whose length is the cloud's, not the user's (a job's is the user's)."""
BY_SIZE = frozenset({"start_create_node_pool"})
"""Learned per VM size: a GPU size's node image and driver set how long its pool takes."""
NEWEST_WEIGHT = 0.3
LOW_GUESS = 0.9
"""The first check at 90 % of the learned time: a wait that ends at its first check teaches
no shorter time, so the guess stays on the low side and keeps learning."""
ATTEMPTS = 8
"""Writers that raced (another run ended at the same moment) read again and retry."""

_log = logging.getLogger(__name__)


def learned_seconds(began: datetime, pending_at: datetime | None, seen: datetime) -> float:
    """What a wait teaches: it ended after the last check that saw it pending and by the one
    that saw it done. The earlier bound is kept (a wait's detection latency, which depends on
    how often it was checked, is not the cloud's time); a wait done at its first check teaches
    90 % of that check's time, so the guess comes down until a check lands before the end."""
    if pending_at is not None and pending_at > began:
        return (pending_at - began).total_seconds()
    return LOW_GUESS * (seen - began).total_seconds()


def wait_key(activity: str, vm_size: str | None = None) -> str:
    """The key a wait is expected and learned under in RunOptions.expected_seconds."""
    return f"{activity} {vm_size}" if activity in BY_SIZE and vm_size else activity


def _stored_key(key: str, location: str) -> str:
    activity, _, size = key.partition(" ")
    return " ".join(part for part in (activity, location.lower(), size) if part)


def expected_for(values: Mapping[str, str], location: str, sizes: Iterable[str]) -> dict[str, int]:
    """The learned expectations for a request in `location` whose pool may get `sizes`, by
    RunOptions.expected_seconds's keys; {} when nothing is learned or the store is unreadable."""
    learned, _ = _read(values)
    keys = [wait_key(a) for a in LEARNED - BY_SIZE]
    keys += [wait_key(a, size) for a in BY_SIZE for size in sizes]
    found: dict[str, int] = {}
    for key in keys:
        entry = learned.get(_stored_key(key, location))
        if isinstance(entry, dict) and isinstance(entry.get("seconds"), int | float):
            found[key] = max(1, round(float(entry["seconds"]) * LOW_GUESS))
    return found


def learned_options(values: Mapping[str, str], request: ProvisionRequest) -> RunOptions:
    """The run options of a request: the fixed guesses, replaced by what was learned."""
    from shared.sequence import EXPECTED_SECONDS, RunOptions

    pool = request.node_pool
    learned = expected_for(values, request.location, [pool.vm_size, *pool.alternative_vm_sizes])
    return RunOptions(expected_seconds={**EXPECTED_SECONDS, **learned})


def remember(values: Mapping[str, str], location: str, observed: Mapping[str, float]) -> bool:
    """Fold what this run's waits took into the moving averages; False when not stored."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

    for _ in range(ATTEMPTS):
        learned, etag = _read(values)
        for key, seconds in observed.items():
            stored = _stored_key(key, location)
            entry = learned.get(stored)
            before = entry if isinstance(entry, dict) else {}
            runs = int(before.get("runs") or 0)
            average = float(before.get("seconds") or seconds)
            if runs:
                average = NEWEST_WEIGHT * seconds + (1 - NEWEST_WEIGHT) * average
            learned[stored] = {"seconds": round(average, 1), "runs": runs + 1}
        try:
            with _container(values, create=True) as container:
                blob = container.get_blob_client(BLOB)
                data = json.dumps(learned, indent=1, sort_keys=True).encode()
                if etag is None:
                    blob.upload_blob(data, overwrite=False)
                else:
                    blob.upload_blob(
                        data, overwrite=True, etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )  # fmt: skip
            return True
        except (ResourceModifiedError, ResourceExistsError):
            continue  # another run wrote it meanwhile: read again
        except Exception as error:  # best effort: the fixed guesses still work
            _log.warning("wait durations not stored: %s", storage_reason(error))
            return False
    _log.warning("wait durations not stored: %d writers raced", ATTEMPTS)
    return False


def _read(values: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """The learned table and its etag (None: no blob yet, or unreadable)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        with _container(values) as container:
            downloaded = container.get_blob_client(BLOB).download_blob()
            etag = str(downloaded.properties.etag)
            data = downloaded.readall()
    except ResourceNotFoundError:  # no container or no blob yet
        return {}, None
    except Exception as error:  # best effort: the fixed guesses still work
        _log.warning("learned wait durations not read: %s", storage_reason(error))
        return {}, None
    try:
        table = json.loads(data)
    except ValueError:
        table = None  # not ours to read: the next write replaces it
    return (table if isinstance(table, dict) else {}), etag


def _container(values: Mapping[str, str], *, create: bool = False) -> Any:
    """The `learned` container (`create`: made if missing, before the first write)."""
    from shared.blobs import app_container, ensure_container

    # best effort: no retry (the storage SDK backs off 15 s and more) and short timeouts, so an
    # unreachable store costs an intake seconds at most
    container = app_container(
        values, CONTAINER, retry_total=0, connection_timeout=5, read_timeout=10
    )
    if create:
        try:
            ensure_container(container)
        except Exception:
            container.close()
            raise
    return container
