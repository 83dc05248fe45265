"""Running the reaper: scan the subscriptions, plan (shared/reaper/plan.py), start the deletions
through the one reconcile routine the run uses, and publish a `reaped` event for each."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from pydantic import AwareDatetime, Field

from shared.arm import ArmAdapter
from shared.errors import StepError
from shared.events import Outcome, event_publisher
from shared.ownership import request_of
from shared.reaper.plan import (
    Deletion,
    ListedCluster,
    RequestStates,
    Skip,
    listed_cluster,
    plan_reaping,
)
from shared.settings import Settings
from shared.wire import HistoryModel

log = logging.getLogger(__name__)


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
            request_id
            for cluster in clusters
            for tags in [cluster.tags, *(p.tags for p in cluster.pools)]
            if (request_id := request_of(tags, settings.owner)) is not None
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
        self._adapter.start_delete_owned(
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
    """The `reaped` event of a deletion; its id names the resource kind (a request has one pool
    and at most one cluster), so the two deletions are two events, not a duplicate."""
    noun = "cluster" if deletion.kind == "cluster" else "node pool"
    name = deletion.cluster_name if deletion.pool_name is None else deletion.pool_name
    return Outcome(
        request_id=deletion.request_id,
        step="reaped",
        status="reaped",
        resource=deletion.kind,
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
