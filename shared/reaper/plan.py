"""The reaper's decision: a pure function of what ARM lists, the time and the requests' states.

Due means past its `gpuprov-expires-at` tag, or (after a grace period) left behind by a run that
is over without keeping it, or owned by a request the Durable host does not know. Only what this
deployment owns (shared/ownership.py, the rule the run uses too) is ever considered. AKS allows
one operation per cluster at a time, so a plan holds at most one deletion per cluster, pools
before their cluster, and leaves a busy cluster to the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from shared.arm.handles import JsonDict
from shared.ownership import EXPIRES_AT_TAG, REQUEST_ID_TAG, request_of
from shared.request import ProvisionRequest
from shared.runtime_status import is_active
from shared.wire import HistoryModel

SETTLED_STATES = frozenset({"succeeded", "failed", "canceled"})
"""provisioningStates with no operation running; any other one means the cluster is busy."""
SYSTEM_MODE = "system"
ResourceKind = Literal["pool", "cluster"]
Reason = Literal["expired", "run-finished", "request-unknown"]


# -- what the reaper knows about a request --------------------------------------------------------


class RequestState(HistoryModel):
    """A request's run as the Durable host reports it, reduced to what the reaper needs."""

    phase: Literal["active", "finished", "unknown", "unchecked"]
    """active: pending or running; finished: completed, failed, terminated or canceled;
    unknown: no instance with that id; unchecked: no Durable host was asked (`gpuprov reap`),
    so only expiry counts."""
    finished_at: AwareDatetime | None = Field(default=None, strict=False)
    keeps_cluster: bool = False
    """The request's cleanup policy leaves its cluster until it expires."""
    keeps_pool: bool = False
    """The request's cleanup policy leaves its GPU pool until it expires."""


UNKNOWN = RequestState(phase="unknown")
UNCHECKED = RequestState(phase="unchecked")


def request_state(
    runtime_status: str | None, finished_at: datetime | None, run_input: Any
) -> RequestState:
    """The state of a request from a Durable status query (runtime status, last update, input).

    No status is an unknown request. The input (the orchestration's RunInput as JSON) gives the
    cleanup policy; an unreadable one keeps nothing, so the run's leftovers go after the grace.
    """
    if not runtime_status:
        return UNKNOWN
    if is_active(runtime_status):
        return RequestState(phase="active")
    keeps_cluster = keeps_pool = False
    raw = run_input.get("request") if isinstance(run_input, dict) else None
    if isinstance(raw, dict):
        try:
            policy = ProvisionRequest.model_validate(raw).cleanup
        except ValueError:
            policy = None
        if policy is not None:
            keeps_cluster = policy.delete_cluster is False
            keeps_pool = not policy.delete_node_pool and not policy.delete_cluster
    if finished_at is not None and finished_at.tzinfo is None:
        finished_at = finished_at.replace(tzinfo=UTC)  # the Durable API reports UTC
    return RequestState(
        phase="finished",
        finished_at=finished_at,
        keeps_cluster=keeps_cluster,
        keeps_pool=keeps_pool,
    )


RequestStates = Callable[[str], RequestState]
"""The port that answers a request id's state (the timer function asks the Durable client)."""


# -- what ARM lists -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListedPool:
    name: str
    mode: str
    tags: Mapping[str, str]
    provisioning_state: str


@dataclass(frozen=True)
class ListedCluster:
    """A managed cluster and its agent pools as one subscription-wide list returns them."""

    subscription_id: str
    resource_group: str
    name: str
    tags: Mapping[str, str]
    provisioning_state: str
    pools: tuple[ListedPool, ...] = ()
    created_at: datetime | None = None
    """ARM's systemData.createdAt, when given: an unknown request's cluster goes once it is older
    than the grace. A pool's age is not listed, so an unknown request's pool waits for expiry."""

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.name}"
        )

    def pool_id(self, pool: str) -> str:
        return f"{self.resource_id}/agentPools/{pool}"


def listed_cluster(subscription_id: str, raw: JsonDict) -> ListedCluster:
    """A cluster from a list answer (camelCase JSON), with the pools in its agentPoolProfiles."""
    properties = raw.get("properties") or {}
    parts = str(raw.get("id") or "").split("/")
    group = parts[parts.index("resourceGroups") + 1] if "resourceGroups" in parts else ""
    pools = tuple(
        ListedPool(
            name=str(profile.get("name") or ""),
            mode=str(profile.get("mode") or ""),
            tags=_tags(profile.get("tags")),
            provisioning_state=str(profile.get("provisioningState") or ""),
        )
        for profile in properties.get("agentPoolProfiles") or []
        if isinstance(profile, dict)
    )
    created = (raw.get("systemData") or {}).get("createdAt")
    return ListedCluster(
        subscription_id=subscription_id,
        resource_group=group,
        name=str(raw.get("name") or ""),
        tags=_tags(raw.get("tags")),
        provisioning_state=str(properties.get("provisioningState") or ""),
        pools=pools,
        created_at=_parse_time(created) if isinstance(created, str) else None,
    )


# -- the decision ---------------------------------------------------------------------------------


class Deletion(HistoryModel):
    """One deletion the reaper starts (or, in a dry run, would start)."""

    resource_id: str
    kind: ResourceKind
    subscription_id: str
    resource_group: str
    cluster_name: str
    pool_name: str | None = None
    request_id: str
    reason: Reason
    expires_at: str | None = None
    """The resource's `gpuprov-expires-at` tag as it reads."""


class Skip(HistoryModel):
    """An owned resource left alone this run, and why."""

    resource_id: str
    reason: str


@dataclass(frozen=True)
class ReapPlan:
    deletions: list[Deletion] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)


@dataclass(frozen=True)
class _Verdict:
    reason: Reason | None
    why_not: str = ""


def plan_reaping(
    clusters: Sequence[ListedCluster],
    owner: str,
    now: datetime,
    states: Mapping[str, RequestState],
    grace: timedelta,
) -> ReapPlan:
    """What to delete now: at most one deletion per cluster, a cluster's due pools before it.

    A resource is ours when its owner tag is `owner` and it names its request; nothing else is
    even reported. A cluster is deleted only when no pool other than its system pool is left and
    every pool in it is ours. Requests missing from `states` are unknown.
    """
    plan = ReapPlan()
    for cluster in sorted(clusters, key=lambda c: c.resource_id.lower()):
        _plan_cluster(cluster, owner, now, states, grace, plan)
    return plan


def _plan_cluster(
    cluster: ListedCluster,
    owner: str,
    now: datetime,
    states: Mapping[str, RequestState],
    grace: timedelta,
    plan: ReapPlan,
) -> None:
    due_pools: list[tuple[ListedPool, Reason]] = []
    for pool in sorted(cluster.pools, key=lambda p: p.name.lower()):
        if request_of(pool.tags, owner) is None or pool.mode.lower() == SYSTEM_MODE:
            continue  # a system pool goes with its cluster; AKS refuses to delete it alone
        verdict = _verdict(pool.tags, "pool", now, states, grace, created_at=None)
        if verdict.reason is None:
            plan.skipped.append(
                Skip(resource_id=cluster.pool_id(pool.name), reason=verdict.why_not)
            )
        else:
            due_pools.append((pool, verdict.reason))
    cluster_verdict = (
        _verdict(cluster.tags, "cluster", now, states, grace, cluster.created_at)
        if request_of(cluster.tags, owner) is not None
        else None
    )
    if cluster_verdict is not None and cluster_verdict.reason is None:
        plan.skipped.append(Skip(resource_id=cluster.resource_id, reason=cluster_verdict.why_not))
    cluster_due = cluster_verdict is not None and cluster_verdict.reason is not None
    if not due_pools and not cluster_due:
        return
    busy = _busy_state(cluster)
    if busy:
        waiting = [cluster.pool_id(p.name) for p, _ in due_pools]
        waiting += [cluster.resource_id] if cluster_due else []
        plan.skipped.extend(
            Skip(resource_id=resource, reason=f"an operation is in progress ({busy}); next run")
            for resource in waiting
        )
        return
    if due_pools:
        (first, reason), *rest = due_pools
        plan.deletions.append(_deletion(cluster, first.tags, reason, first.name))
        plan.skipped.extend(
            Skip(resource_id=cluster.pool_id(p.name), reason="one operation per cluster; next run")
            for p, _ in rest
        )
        if cluster_due:
            plan.skipped.append(
                Skip(resource_id=cluster.resource_id, reason="its pools are deleted first")
            )
        return
    if cluster_verdict is None or cluster_verdict.reason is None:
        return
    blockers = [
        p.name
        for p in cluster.pools
        if p.mode.lower() != SYSTEM_MODE or request_of(p.tags, owner) is None
    ]
    if blockers:
        held = ", ".join(sorted(blockers))
        plan.skipped.append(
            Skip(resource_id=cluster.resource_id, reason=f"it holds pools it may not lose: {held}")
        )
        return
    plan.deletions.append(_deletion(cluster, cluster.tags, cluster_verdict.reason, None))


def _verdict(
    tags: Mapping[str, str],
    kind: ResourceKind,
    now: datetime,
    states: Mapping[str, RequestState],
    grace: timedelta,
    created_at: datetime | None,
) -> _Verdict:
    expires = _parse_time(tags.get(EXPIRES_AT_TAG, ""))
    if expires is not None and now >= expires:
        return _Verdict("expired")
    state = states.get(tags[REQUEST_ID_TAG], UNKNOWN)
    until = f"kept until it expires at {tags.get(EXPIRES_AT_TAG) or '(no expiry tag)'}"
    if state.phase == "active":
        return _Verdict(None, f"its request is still running; {until}")
    if state.phase == "unchecked":
        return _Verdict(None, f"its request's state was not checked here; {until}")
    if state.phase == "finished":
        kept = state.keeps_cluster if kind == "cluster" else state.keeps_pool
        if kept:
            return _Verdict(None, f"its request's cleanup policy keeps it; {until}")
        if state.finished_at is not None and now >= state.finished_at + grace:
            return _Verdict("run-finished")
        return _Verdict(None, "its run finished within the grace period; next run")
    if created_at is not None and now >= created_at + grace:
        return _Verdict("request-unknown")
    return _Verdict(None, f"its request is unknown and its age is not past the grace; {until}")


def _busy_state(cluster: ListedCluster) -> str:
    """The first unsettled provisioningState of the cluster or its pools, or ''."""
    states = [cluster.provisioning_state, *(p.provisioning_state for p in cluster.pools)]
    return next((s for s in states if s and s.lower() not in SETTLED_STATES), "")


def _deletion(
    cluster: ListedCluster, tags: Mapping[str, str], reason: Reason, pool: str | None
) -> Deletion:
    return Deletion(
        resource_id=cluster.resource_id if pool is None else cluster.pool_id(pool),
        kind="cluster" if pool is None else "pool",
        subscription_id=cluster.subscription_id,
        resource_group=cluster.resource_group,
        cluster_name=cluster.name,
        pool_name=pool,
        request_id=tags[REQUEST_ID_TAG],
        reason=reason,
        expires_at=tags.get(EXPIRES_AT_TAG),
    )


def _tags(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _parse_time(text: str) -> datetime | None:
    """An ISO 8601 time with its zone (a `Z` suffix too); None when it is not one."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
