"""The preflight's judgement, pure: which capacity candidates can run, why the others cannot,
which one goes first, and what the run is expected to cost.

Inputs are what the Azure reads found (shared/arm/compute.py: SKUs and quotas of the location)
and the hourly prices (shared/prices.py); nothing here calls anything. A candidate fits when its
size is offered to the subscription in the location and in each zone it asks for, and its vCPUs
(nodes x vCPUs per VM) fit the size's family quota and the regional total — or, for spot, the
regional low-priority quota — after what is already used. Candidates keep the request's order
(its sizes are its preference); those that do not fit are dropped with their reasons.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

from pydantic import Field

from shared.arm.compute import ComputeView, Quota
from shared.arm.features import FeatureState
from shared.arm.pool import candidates
from shared.errors import StepErrorWire
from shared.prices import Price
from shared.request import ProvisionRequest
from shared.wire import HistoryModel

PROVISIONING_MINUTES = 15
"""Expected minutes of GPU nodes billed before the job starts: AKS pool creation (minutes,
PLATFORM-FACTS "Cluster creates take minutes"), the device plugin and the GPU checks."""
REGIONAL, SPOT = "cores", "lowPriorityCores"
QUOTA_BLADE = "https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView"


class QuotaCheck(HistoryModel):
    """One quota a candidate needs: the limit, what is used, what the pool needs."""

    name: str
    location: str
    limit: int
    used: int
    needed: int

    @property
    def fits(self) -> bool:
        return self.used + self.needed <= self.limit


class CandidateCheck(HistoryModel):
    """One capacity candidate (size x zones) and the preflight's verdict on it."""

    vm_size: str
    zones: list[str] = Field(default_factory=list)
    fits: bool
    reasons: list[str] = Field(default_factory=list)
    """Why it cannot run (empty when it fits)."""
    quota: list[QuotaCheck] = Field(default_factory=list)
    hourly: float | None = None
    """Price of one node per hour (spot when the request asks for spot)."""
    price_source: str | None = None


class Estimate(HistoryModel):
    """nodes x hourly price x (expected provisioning + job timeout + time kept), for the chosen."""

    cost: float
    currency: str
    hours: float
    nodes: int
    hourly: float
    vm_size: str


class BudgetLimit(HistoryModel):
    """The budget the run is held to, and where it came from (the request or the operator)."""

    max_cost: float
    currency: str
    source: str


class Plan(HistoryModel):
    """What the preflight found: each candidate's verdict, the chosen one, the estimate."""

    location: str
    candidates: list[CandidateCheck]
    chosen: CandidateCheck | None = None
    estimate: Estimate | None = None
    budget: BudgetLimit | None = None
    features: list[FeatureState] = Field(default_factory=list)
    """The requested preview features' states now (register-features registers the others)."""
    unchecked: dict[str, str] = Field(default_factory=dict)
    """What could not be read ("skus", "usages", "prices") and why: not judged by."""
    error: StepErrorWire | None = None
    """Why the request cannot run; None when it can."""

    @property
    def can_run(self) -> bool:
        return self.error is None and self.chosen is not None

    @property
    def fitting(self) -> list[CandidateCheck]:
        return [c for c in self.candidates if c.fits]

    def wire(self) -> dict[str, object]:
        """The plan as `gpuprov plan --json` and POST /api/plan answer it, with `canRun`."""
        return {"canRun": self.can_run, **self.model_dump(mode="json", by_alias=True)}


def quota_page(subscription_id: str, quota: QuotaCheck) -> str:
    """The portal's quota request for this quota and location, filled in with the new limit
    (the link ARM's own QuotaExceeded message gives)."""
    parameters = {
        "subscriptionId": subscription_id,
        "command": "openQuotaApprovalBlade",
        "quotas": [
            {
                "location": quota.location,
                "providerId": "Microsoft.Compute",
                "resourceName": quota.name,
                "quotaRequest": {
                    "properties": {
                        "limit": quota.used + quota.needed,
                        "unit": "Count",
                        "name": {"value": quota.name},
                    }
                },
            }
        ],
    }
    # quoted as ARM's message quotes it: braces and quotes escaped, `:,[]` kept
    text = quote(json.dumps(parameters, separators=(",", ":")), safe=":,[]")
    return f"{QUOTA_BLADE}/Parameters/{text}"


def hours_kept(request: ProvisionRequest) -> float:
    """Hours the GPU nodes are expected to be billed: provisioning, the job's timeout, and the
    time-to-live when the pool is left running."""
    kept = 0 if request.cleanup.delete_node_pool else request.cleanup.ttl_hours
    return PROVISIONING_MINUTES / 60 + request.job.timeout_minutes / 60 + kept


def _quota_checks(view: ComputeView, family: str, needed: int, spot: bool) -> list[QuotaCheck]:
    """The quotas the pool draws on. Names match whatever their case: ARM names are
    case-insensitive, and the SKU list's `family` and the usages' `name.value` of one family
    are seen in both (`StandardNCadsH100v5Family` / `standardNCadsH100v5Family`)."""
    names = (SPOT,) if spot else (family, REGIONAL)
    by_name = {name.lower(): quota for name, quota in view.quotas.items()}
    found: list[QuotaCheck] = []
    for name in names:
        quota = by_name.get(name.lower())
        if quota is None:
            continue
        found.append(_check(view.location, quota, needed))
    return found


def _check(location: str, quota: Quota, needed: int) -> QuotaCheck:
    return QuotaCheck(
        name=quota.name, location=location, limit=quota.limit, used=quota.used, needed=needed
    )


def judge(
    request: ProvisionRequest,
    view: ComputeView,
    prices: Mapping[str, Price | None],
    budget: BudgetLimit | None = None,
) -> Plan:
    """Each candidate's verdict, the first that fits, its estimate and the budget's verdict."""
    pool, spot = request.node_pool, request.node_pool.spot is not None
    checked: list[CandidateCheck] = []
    for candidate in candidates(request):
        reasons: list[str] = []
        quota: list[QuotaCheck] = []
        sku = view.skus.get(candidate.vm_size.lower())
        if sku is None and "skus" not in view.unchecked:
            reasons.append(f"{candidate.vm_size} is not offered in {view.location}")
        elif sku is not None:
            if sku.restricted:
                reasons.append(
                    f"{sku.name} is restricted for this subscription in {view.location} "
                    f"({sku.restricted})"
                )
            missing = [z for z in candidate.zones if z not in sku.zones]
            if missing and not sku.restricted:
                why = f" ({sku.zone_restriction})" if sku.zone_restriction else ""
                reasons.append(f"{sku.name} is not offered in zone(s) {', '.join(missing)}{why}")
            if spot and not sku.low_priority:
                reasons.append(f"{sku.name} has no spot VMs")
            quota = _quota_checks(view, sku.family, sku.vcpus * pool.node_count, spot)
            reasons += [
                f"{sku.name} needs {q.needed} vCPUs of {q.name} in {q.location}: limit "
                f"{q.limit}, used {q.used}"
                for q in quota
                if not q.fits
            ]
        price = prices.get(candidate.vm_size.lower())
        checked.append(
            CandidateCheck(
                vm_size=candidate.vm_size,
                zones=candidate.zones,
                fits=not reasons,
                reasons=reasons,
                quota=quota,
                hourly=price.hourly if price else None,
                price_source=price.source if price else None,
            )
        )
    plan = Plan(location=view.location, candidates=checked, budget=budget, unchecked=view.unchecked)
    return _choose(request, plan)


def _choose(request: ProvisionRequest, plan: Plan) -> Plan:
    fitting = plan.fitting
    if not fitting:
        return plan.model_copy(update={"error": _no_fit(request, plan)})
    chosen = fitting[0]
    estimate = None
    if chosen.hourly is not None:
        hours = hours_kept(request)
        nodes = request.node_pool.node_count
        estimate = Estimate(
            cost=round(nodes * chosen.hourly * hours, 2),
            currency="USD",
            hours=round(hours, 3),
            nodes=nodes,
            hourly=chosen.hourly,
            vm_size=chosen.vm_size,
        )
    error = None
    budget = plan.budget
    if budget is not None and estimate is not None and estimate.cost > budget.max_cost:
        error = StepErrorWire(
            kind="permanent",
            code="OverBudget",
            message=f"The estimate {estimate.cost:.2f} {estimate.currency} ({estimate.nodes} x "
            f"{chosen.vm_size} at {estimate.hourly} per hour for {estimate.hours} h) is over the "
            f"budget of {budget.max_cost:.2f} {budget.currency} ({budget.source}).",
            hint="Raise budget.maxCost, lower nodePool.nodeCount or job.timeoutMinutes, delete "
            "the pool at cleanup, or list a cheaper size first.",
        )
    return plan.model_copy(update={"chosen": chosen, "estimate": estimate, "error": error})


def _no_fit(request: ProvisionRequest, plan: Plan) -> StepErrorWire:
    """The error when no candidate fits: the first short quota (with its request page), or the
    restrictions."""
    short = [q for c in plan.candidates for q in c.quota if not q.fits]
    reasons = "; ".join(dict.fromkeys(r for c in plan.candidates for r in c.reasons))
    if short:
        first = short[0]
        return StepErrorWire(
            kind="quota",
            code="QuotaExceeded",
            message=f"No candidate fits: {reasons}.",
            hint=f"Raise the {first.name} vCPU quota in {first.location} to at least "
            f"{first.used + first.needed} (now {first.limit}) with the quota request page "
            f"{quota_page(request.subscription_id, first)} (or `az quota update`), or list a "
            "size of another family in nodePool.alternativeVmSizes.",
        )
    return StepErrorWire(
        kind="permanent",
        code="SkuNotAvailable",
        message=f"No candidate is offered: {reasons}.",
        # `--all`: without it az hides a size restricted in the whole region (azure-cli
        # `is_sku_available`), the very case this error reports
        hint=f"`az vm list-skus --location {plan.location} --size "
        f"{request.node_pool.vm_size} --all --output table` shows the restrictions; list other "
        "sizes or zones, or use another region.",
    )


def budget_for(request: ProvisionRequest, default: float, maximum: float) -> BudgetLimit | None:
    """The request's budget, else the operator's default, else the operator's maximum."""
    if request.budget is not None:
        return BudgetLimit(
            max_cost=request.budget.max_cost, currency=request.budget.currency, source="request"
        )
    if default:
        limit = min(default, maximum) if maximum else default
        return BudgetLimit(max_cost=limit, currency="USD", source="GPUPROV_DEFAULT_BUDGET")
    if maximum:
        return BudgetLimit(max_cost=maximum, currency="USD", source="GPUPROV_MAX_BUDGET")
    return None


def actual_cost(nodes: int, hourly: float, seconds: float) -> float:
    """What the pool cost: node-seconds from its creation to its deletion at the hourly price."""
    return round(nodes * max(seconds, 0.0) / 3600 * hourly, 4)
