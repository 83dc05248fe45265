"""The reaper: deletes the clusters and pools this deployment created once they are due.

`plan` decides (a pure function); `run` scans, starts the deletions and reports.
"""

from shared.reaper.plan import (
    UNCHECKED,
    UNKNOWN,
    Deletion,
    ListedCluster,
    ListedPool,
    ReapPlan,
    RequestState,
    RequestStates,
    Skip,
    listed_cluster,
    plan_reaping,
    request_state,
)
from shared.reaper.run import (
    NO_SCOPE,
    Reaper,
    ReapError,
    ReapReport,
    reap,
    reaped_outcome,
    reaper_subscriptions,
    report_line,
)

__all__ = [
    "NO_SCOPE",
    "UNCHECKED",
    "UNKNOWN",
    "Deletion",
    "ListedCluster",
    "ListedPool",
    "ReapError",
    "ReapPlan",
    "ReapReport",
    "Reaper",
    "RequestState",
    "RequestStates",
    "Skip",
    "listed_cluster",
    "plan_reaping",
    "reap",
    "reaped_outcome",
    "reaper_subscriptions",
    "report_line",
    "request_state",
]
