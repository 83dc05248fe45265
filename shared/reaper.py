"""The reaper: deletes the clusters and pools this deployment created once they are due.

Due means past their `gpuprov-expires-at` tag, or (after a grace period) left behind by a run that
is over without keeping them, or owned by a request the Durable host does not know. Only resources
whose `gpuprov-owner` tag is this deployment's owner are ever touched. AKS allows one operation per
cluster at a time, so each run starts at most one deletion per cluster, pools before their cluster,
and leaves a busy cluster to the next run. What to delete is decided by `plan_reaping`, a pure
function of the listed resources, the time and the requests' states.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from shared.arm import ArmAdapter
from shared.errors import StepError
from shared.events import Outcome, event_publisher
from shared.request import ProvisionRequest
from shared.settings import Settings
from shared.specs import EXPIRES_AT_TAG, OWNER_TAG, REQUEST_ID_TAG, JsonDict
from shared.wire import HistoryModel

log = logging.getLogger(__name__)

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
ACTIVE_STATUSES = frozenset({"pending", "running", "continuedasnew", "suspended"})


def request_state(
    runtime_status: str | None, finished_at: datetime | None, run_input: Any
) -> RequestState:
    """The state of a request from a Durable status query (runtime status, last update, input).

    No status is an unknown request. The input (the orchestration's RunInput as JSON) gives the
    cleanup policy; an unreadable one keeps nothing, so the run's leftovers go after the grace.
    """
    if not runtime_status:
        return UNKNOWN
    if runtime_status.replace("_", "").lower() in ACTIVE_STATUSES:
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
        if not _ours(pool.tags, owner) or pool.mode.lower() == SYSTEM_MODE:
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
        if _ours(cluster.tags, owner)
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
        p.name for p in cluster.pools if p.mode.lower() != SYSTEM_MODE or not _ours(p.tags, owner)
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


def _ours(tags: Mapping[str, str], owner: str) -> bool:
    """Owner tag is ours and the request id is one an event can carry (1 to 63 characters)."""
    request_id = tags.get(REQUEST_ID_TAG, "")
    return tags.get(OWNER_TAG) == owner and 0 < len(request_id) <= 63


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


# -- running it -----------------------------------------------------------------------------------


class ReapError(HistoryModel):
    """Something the reaper could not do this run (it goes on with the rest)."""

    target: str
    """A subscription id or a resource id."""
    code: str
    message: str


class ReapReport(HistoryModel):
    """What one reaper run saw and did; serialisable, with no secret in it."""

    at: AwareDatetime = Field(strict=False)
    dry_run: bool
    subscriptions: list[str]
    clusters_scanned: int = 0
    deletions: list[Deletion] = Field(default_factory=list)
    """Deletions started (in a dry run: the ones it would start)."""
    skipped: list[Skip] = Field(default_factory=list)
    errors: list[ReapError] = Field(default_factory=list)


NO_SCOPE = "NoSubscriptions"
"""ReapError code of a run that had no subscription to scan."""


def reaper_subscriptions(settings: Settings, recorded: Iterable[str] = ()) -> list[str]:
    """Every subscription this deployment may have provisioned in: GPUPROV_REAPER_SUBSCRIPTIONS,
    GPUPROV_ALLOWED_SUBSCRIPTIONS and those its requests named (`recorded`)."""
    found = {*settings.reaper_subscriptions, *settings.allowed_subscriptions}
    return sorted(found | {s.strip().lower() for s in recorded if s.strip()})


class Reaper:
    """One reaper run's ARM access; `publish` sends an outcome (the events topic by default)."""

    def __init__(
        self,
        settings: Settings,
        adapter: ArmAdapter,
        publish: Callable[[Outcome], object] | None = None,
    ) -> None:
        self._settings = settings
        self._adapter = adapter
        self._publish = publish

    def run(self, states: RequestStates, now: datetime, recorded: Iterable[str] = ()) -> ReapReport:
        """Scan, decide and (unless the settings say dry run) start the deletions. An empty
        scope is an error in the report (and a warning in the log), never a quiet no-op."""
        settings = self._settings
        subscriptions = reaper_subscriptions(settings, recorded)
        clusters: list[ListedCluster] = []
        errors: list[ReapError] = []
        if not subscriptions:
            message = (
                "no subscription to scan: no request has named one yet, and neither "
                "GPUPROV_REAPER_SUBSCRIPTIONS nor GPUPROV_ALLOWED_SUBSCRIPTIONS is set"
            )
            log.warning("reaper: %s", message)
            errors.append(ReapError(target="scope", code=NO_SCOPE, message=message))
        for subscription in subscriptions:
            try:
                clusters.extend(self.list_clusters(subscription))
            except StepError as error:
                errors.append(_reap_error(subscription, error))
        ours = {
            tags[REQUEST_ID_TAG]
            for cluster in clusters
            for tags in [cluster.tags, *(p.tags for p in cluster.pools)]
            if _ours(tags, settings.owner)
        }
        known = {request_id: states(request_id) for request_id in sorted(ours)}
        grace = timedelta(hours=settings.reaper_grace_hours)
        plan = plan_reaping(clusters, settings.owner, now, known, grace)
        started: list[Deletion] = []
        for deletion in plan.deletions:
            if settings.reaper_dry_run:
                log.info("%s: reaper dry run: would delete %s (%s)", deletion.request_id,
                         deletion.resource_id, deletion.reason)  # fmt: skip
                started.append(deletion)
                continue
            try:
                self.start_delete(deletion)
            except StepError as error:
                errors.append(_reap_error(deletion.resource_id, error))
                continue
            started.append(deletion)
            try:
                self._publish_reaped(deletion, now)
            except StepError as error:
                errors.append(_reap_error(deletion.resource_id, error))
        return ReapReport(
            at=now,
            dry_run=settings.reaper_dry_run,
            subscriptions=subscriptions,
            clusters_scanned=len(clusters),
            deletions=started,
            skipped=plan.skipped,
            errors=errors,
        )

    def list_clusters(self, subscription_id: str) -> list[ListedCluster]:
        """Every managed cluster of the subscription, with its pools, in one paged list."""
        return [
            listed_cluster(subscription_id, raw)
            for raw in self._adapter.list_clusters(subscription_id)
        ]

    def start_delete(self, deletion: Deletion) -> None:
        """Start the DELETE without waiting for it; already gone is fine."""
        self._adapter.start_delete_tagged(
            deletion.subscription_id,
            deletion.resource_group,
            deletion.cluster_name,
            deletion.pool_name,
            deletion.request_id,
        )
        log.info("%s: reaper: deleting %s (%s)", deletion.request_id, deletion.resource_id,
                 deletion.reason)  # fmt: skip

    def _publish_reaped(self, deletion: Deletion, now: datetime) -> None:
        outcome = reaped_outcome(deletion, now)
        if self._publish is not None:
            self._publish(outcome)
        else:
            event_publisher(self._settings).publish(outcome)


def reaped_outcome(deletion: Deletion, now: datetime) -> Outcome:
    """The `reaped` event of a deletion. The cluster's is attempt 2, so a request's pool and
    cluster deletions have distinct event ids (the topic drops a repeated id as a duplicate)."""
    noun = "cluster" if deletion.kind == "cluster" else "node pool"
    name = deletion.cluster_name if deletion.pool_name is None else deletion.pool_name
    return Outcome(
        request_id=deletion.request_id,
        step="reaped",
        status="reaped",
        attempt=2 if deletion.kind == "cluster" else 1,
        message=f"deleting {noun} {name}: {deletion.reason}",
        details={
            "resourceId": deletion.resource_id,
            "kind": deletion.kind,
            "reason": deletion.reason,
            "expiresAt": deletion.expires_at,
        },
        time=now,
    )


def reap(
    settings: Settings,
    states: RequestStates,
    now: datetime,
    publish: Callable[[Outcome], object] | None = None,
    recorded: Iterable[str] = (),
) -> ReapReport:
    """One reaper run with its own ARM clients (closed before it returns); `recorded`: the
    subscriptions the requests named, scanned besides the settings' ones."""
    with ArmAdapter(settings) as adapter:
        return Reaper(settings, adapter, publish).run(states, now, recorded)


def report_line(report: ReapReport) -> str:
    """One line for the log: the scope and what the run did."""
    verb = "would delete" if report.dry_run else "deleting"
    scope = ", ".join(report.subscriptions) or "no subscription"
    return (
        f"reaper: scanned {report.clusters_scanned} cluster(s) in {scope}; {verb} "
        f"{len(report.deletions)}, left {len(report.skipped)}, {len(report.errors)} error(s)"
        + "".join(f"; {e.target}: {e.code}: {e.message}" for e in report.errors)
    )


def _reap_error(target: str, error: StepError) -> ReapError:
    return ReapError(target=target, code=error.code, message=error.message)


def _tags(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _parse_time(text: str) -> datetime | None:
    """An ISO 8601 time with its zone (a `Z` suffix too); None when it is not one."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
