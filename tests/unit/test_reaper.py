"""The reaper's decision, as a pure function of listed resources, the time and request states.

Covers: expired owned pools and clusters chosen; untagged resources, other owners' and tags
without a request id never chosen nor reported; a running request's resources kept until they
expire (expiry wins); a finished run's leftovers deleted only after the grace period and only when
its cleanup policy did not keep them; an unknown request's cluster deleted once older than the
grace; pools before their cluster, one deletion per cluster per run, a busy cluster (or pool) left
to the next run; a cluster holding pools it may not lose (foreign, untagged system pool, a pool
still kept) not deleted; the Durable status mapped to a request state; the list answer parsed; the
`reaped` events of a request's pool and cluster carrying distinct ids and the details asked for;
the timer function's bindings (schedule from GPUPROV_REAPER_SCHEDULE, a Durable client).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import pytest
from azure.functions.decorators.timer import TimerTrigger

from shared.events import event_id
from shared.reaper import (
    ListedCluster,
    ListedPool,
    RequestState,
    listed_cluster,
    plan_reaping,
    reaped_outcome,
    request_state,
)

OWNER = "gpuprov"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GRACE = timedelta(hours=2)
PAST = "2026-11-23T11:00:00Z"
FUTURE = "2026-11-24T12:00:00Z"
SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg"


def tags(request: str = "req-1", expires: str = FUTURE, owner: str = OWNER) -> dict[str, str]:
    return {"gpuprov-request-id": request, "gpuprov-owner": owner, "gpuprov-expires-at": expires}


def system(tagged: dict[str, str] | None = None, state: str = "Succeeded") -> ListedPool:
    return ListedPool("system", "System", tagged if tagged is not None else tags(), state)


def gpu(
    name: str = "gpunp", tagged: dict[str, str] | None = None, state: str = "Succeeded"
) -> ListedPool:
    return ListedPool(name, "User", tagged if tagged is not None else tags(), state)


def cluster(
    *pools: ListedPool,
    name: str = "aks",
    tagged: dict[str, str] | None = None,
    state: str = "Succeeded",
    created_at: datetime | None = None,
) -> ListedCluster:
    return ListedCluster(
        SUB, RG, name, tagged if tagged is not None else {}, state, pools, created_at
    )


RUNNING = RequestState(phase="active")
FINISHED_LONG_AGO = RequestState(phase="finished", finished_at=NOW - timedelta(hours=3))
FINISHED_JUST_NOW = RequestState(phase="finished", finished_at=NOW - timedelta(minutes=5))
FINISHED_KEEPING = RequestState(
    phase="finished", finished_at=NOW - timedelta(hours=3), keeps_cluster=True, keeps_pool=True
)


@dataclass(frozen=True)
class Case:
    clusters: list[ListedCluster]
    deleted: list[tuple[str, str]]
    """(cluster/pool path, reason) of each deletion, in order."""
    skipped: set[str] = field(default_factory=set)
    states: dict[str, RequestState] = field(default_factory=dict)


EXPIRED = tags(expires=PAST)
CASES = {
    "expired-owned-pool-in-foreign-cluster": Case(
        [cluster(system({}), gpu(tagged=EXPIRED))], [("aks/gpunp", "expired")]
    ),
    "untagged-pool-never": Case([cluster(system({}), gpu(tagged={}))], []),
    "other-owners-expired-pool-never": Case(
        [cluster(system({}), gpu(tagged=tags(expires=PAST, owner="someone-else")))], []
    ),
    "owner-tag-without-request-id-never": Case(
        [cluster(system({}), gpu(tagged={"gpuprov-owner": OWNER, "gpuprov-expires-at": PAST}))],
        [],
    ),
    "running-request-kept-until-expiry": Case(
        [cluster(system({}), gpu())], [], {"aks/gpunp"}, {"req-1": RUNNING}
    ),
    "running-request-expired-is-reaped": Case(
        [cluster(system({}), gpu(tagged=EXPIRED))],
        [("aks/gpunp", "expired")],
        states={"req-1": RUNNING},
    ),
    "finished-run-past-grace": Case(
        [cluster(system({}), gpu())],
        [("aks/gpunp", "run-finished")],
        states={"req-1": FINISHED_LONG_AGO},
    ),
    "finished-run-within-grace": Case(
        [cluster(system({}), gpu())], [], {"aks/gpunp"}, {"req-1": FINISHED_JUST_NOW}
    ),
    "finished-run-policy-keeps-until-expiry": Case(
        [cluster(system(), gpu(), tagged=tags())],
        [],
        {"aks/gpunp", "aks"},
        {"req-1": FINISHED_KEEPING},
    ),
    "unknown-request-old-cluster": Case(
        [cluster(system(), tagged=tags(), created_at=NOW - timedelta(hours=5))],
        [("aks", "request-unknown")],
    ),
    "unknown-request-young-cluster": Case(
        [cluster(system(), tagged=tags(), created_at=NOW - timedelta(hours=1))], [], {"aks"}
    ),
    "unknown-request-pool-waits-for-expiry": Case(
        [cluster(system({}), gpu(), created_at=NOW - timedelta(days=30))], [], {"aks/gpunp"}
    ),
    "unknown-request-age-unknown": Case(
        [cluster(system(), gpu(), tagged=tags())], [], {"aks/gpunp", "aks"}
    ),
    "pool-before-its-cluster": Case(
        [cluster(system(EXPIRED), gpu(tagged=EXPIRED), tagged=EXPIRED)],
        [("aks/gpunp", "expired")],
        {"aks"},
    ),
    "cluster-once-only-its-system-pool-is-left": Case(
        [cluster(system(EXPIRED), tagged=EXPIRED)], [("aks", "expired")]
    ),
    "one-deletion-per-cluster": Case(
        [cluster(system({}), gpu("b", EXPIRED), gpu("a", EXPIRED))],
        [("aks/a", "expired")],
        {"aks/b"},
    ),
    "busy-cluster-waits": Case(
        [cluster(system(EXPIRED), gpu(tagged=EXPIRED), tagged=EXPIRED, state="Updating")],
        [],
        {"aks/gpunp", "aks"},
    ),
    "deleting-pool-makes-the-cluster-wait": Case(
        [cluster(system(EXPIRED), gpu(tagged=EXPIRED, state="Deleting"), tagged=EXPIRED)],
        [],
        {"aks/gpunp", "aks"},
    ),
    "cluster-holding-a-foreign-pool-stays": Case(
        [cluster(system(EXPIRED), gpu("theirs", {}), tagged=EXPIRED)], [], {"aks"}
    ),
    "cluster-with-untagged-system-pool-stays": Case(
        [cluster(system({}), tagged=EXPIRED)], [], {"aks"}
    ),
    "cluster-holding-a-running-requests-pool-stays": Case(
        [cluster(system(EXPIRED), gpu(tagged=tags("req-2")), tagged=EXPIRED)],
        [],
        {"aks/gpunp", "aks"},
        {"req-2": RUNNING},
    ),
    "each-cluster-gets-its-own-deletion": Case(
        [
            cluster(system({}), gpu(tagged=EXPIRED), name="two"),
            cluster(system(EXPIRED), tagged=EXPIRED, name="one"),
        ],
        [("one", "expired"), ("two/gpunp", "expired")],
    ),
    "unreadable-expiry-is-not-expired": Case(
        [cluster(system({}), gpu(tagged=tags(expires="soon")))],
        [],
        {"aks/gpunp"},
        {"req-1": RUNNING},
    ),
}


def short(resource_id: str) -> str:
    """`aks` or `aks/pool` from a full resource id."""
    path = resource_id.split("/managedClusters/")[1]
    return path.replace("/agentPools/", "/")


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_plan(case: Case) -> None:
    plan = plan_reaping(case.clusters, OWNER, NOW, case.states, GRACE)
    assert [(short(d.resource_id), d.reason) for d in plan.deletions] == case.deleted
    assert {short(s.resource_id) for s in plan.skipped} == case.skipped


def test_deletion_carries_what_the_event_needs() -> None:
    plan = plan_reaping([cluster(system({}), gpu(tagged=EXPIRED))], OWNER, NOW, {}, GRACE)
    (deletion,) = plan.deletions
    assert deletion.request_id == "req-1"
    assert deletion.expires_at == PAST
    assert (deletion.resource_group, deletion.cluster_name, deletion.pool_name) == (
        RG,
        "aks",
        "gpunp",
    )


@pytest.mark.parametrize(
    ("runtime", "request_input", "expected"),
    [
        (None, None, RequestState(phase="unknown")),
        ("Running", None, RequestState(phase="active")),
        ("ContinuedAsNew", None, RequestState(phase="active")),
        ("Pending", None, RequestState(phase="active")),
        ("Failed", "not a run input", RequestState(phase="finished", finished_at=NOW)),
        (
            "Completed",
            {"cleanup": {"deleteCluster": False, "deleteNodePool": False}},
            RequestState(phase="finished", finished_at=NOW, keeps_cluster=True, keeps_pool=True),
        ),
        (
            "Terminated",
            {"cleanup": {"deleteCluster": False, "deleteNodePool": True}},
            RequestState(phase="finished", finished_at=NOW, keeps_cluster=True),
        ),
    ],
    ids=[
        "no-instance",
        "running",
        "continued",
        "pending",
        "unreadable-input",
        "keeps-both",
        "keeps-cluster",
    ],
)
def test_request_state_from_durable_status(
    runtime: str | None, request_input: object, expected: RequestState
) -> None:
    if isinstance(request_input, dict):
        request_input = {
            "request": {
                "apiVersion": "gpuprov/v1",
                "requestId": "req-1",
                "subscriptionId": SUB,
                "resourceGroup": RG,
                "location": "eastus",
                "target": {"kind": "newCluster", "clusterName": "aks"},
                **request_input,
            }
        }
    assert request_state(runtime, NOW.replace(tzinfo=None), request_input) == expected


def test_list_answer_parsed_with_pools_and_creation_time() -> None:
    raw = {
        "id": f"/subscriptions/{SUB}/resourceGroups/MyRG/providers/"
        "Microsoft.ContainerService/managedClusters/aks",
        "name": "aks",
        "tags": EXPIRED,
        "systemData": {"createdAt": "2026-11-20T08:00:00Z"},
        "properties": {
            "provisioningState": "Succeeded",
            "agentPoolProfiles": [
                {"name": "system", "mode": "System", "provisioningState": "Succeeded"},
                {"name": "gpunp", "mode": "User", "tags": EXPIRED, "provisioningState": "Creating"},
            ],
        },
    }
    listed = listed_cluster(SUB, raw)
    assert listed.resource_group == "MyRG"
    assert listed.resource_id == raw["id"]
    assert listed.created_at == datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert listed.pools == (
        ListedPool("system", "System", {}, "Succeeded"),
        ListedPool("gpunp", "User", EXPIRED, "Creating"),
    )


def test_a_requests_pool_and_cluster_events_have_distinct_ids() -> None:
    pool_plan = plan_reaping([cluster(system({}), gpu(tagged=EXPIRED))], OWNER, NOW, {}, GRACE)
    cluster_plan = plan_reaping([cluster(system(EXPIRED), tagged=EXPIRED)], OWNER, NOW, {}, GRACE)
    pool_event = reaped_outcome(pool_plan.deletions[0], NOW)
    cluster_event = reaped_outcome(cluster_plan.deletions[0], NOW)
    assert event_id(pool_event) != event_id(cluster_event)
    assert (pool_event.step, pool_event.status) == ("reaped", "reaped")
    assert pool_event.details == {
        "resourceId": pool_plan.deletions[0].resource_id,
        "kind": "pool",
        "reason": "expired",
        "expiresAt": PAST,
    }


def test_timer_function_reads_its_schedule_from_settings_and_gets_a_durable_client() -> None:
    from functions.reaper import bp

    app = df.DFApp()
    app.register_functions(bp)
    (function,) = app.get_functions()
    trigger = function.get_trigger()
    assert isinstance(trigger, TimerTrigger)
    assert trigger.schedule == "%GPUPROV_REAPER_SCHEDULE%"
    assert not trigger.run_on_startup
    assert ("durableClient", "client") in [(b.type, b.name) for b in function.get_bindings()]
