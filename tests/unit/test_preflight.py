"""The preflight's judgement (shared/preflight.py), pure: table-driven over what Azure answered.

Covers: a size restricted for the subscription (its reasonCode) or not offered in a zone is
dropped with the reason, and only the zones it is offered in stay; spot pools are held to the
regional low-priority quota, not their family's; a part that could not be read is not judged
by; no fitting candidate is a QuotaExceeded naming limit, used and needed with ARM's quota
request link, or a SkuNotAvailable; the budget (the request's, else the operator's default
within the maximum) refuses an estimate over it with both numbers; the estimate and the actual
cost are nodes x hours x price.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.arm.compute import ComputeView, Quota, SkuOffer
from shared.preflight import (
    BudgetLimit,
    QuotaCheck,
    actual_cost,
    budget_for,
    judge,
    quota_page,
)
from shared.prices import Price
from tests.builders import build_request

T4, A100 = "Standard_NC4as_T4_v3", "Standard_NC24ads_A100_v4"
T4_FAMILY, A100_FAMILY = "standardNCASv3_T4Family", "StandardNCADSA100v4Family"
PRICES = {T4.lower(): Price(0.526, "USD", "test"), A100.lower(): Price(3.673, "USD", "test")}


def view(
    *skus: SkuOffer, used: dict[str, int] | None = None, limits: dict[str, int] | None = None
) -> ComputeView:
    quota = {"cores": 100, "lowPriorityCores": 100, T4_FAMILY: 100, A100_FAMILY: 100}
    quota |= limits or {}
    in_use = used or {}
    return ComputeView(
        location="eastus",
        skus={s.name.lower(): s for s in skus},
        quotas={n: Quota(name=n, used=in_use.get(n, 0), limit=v) for n, v in quota.items()},
    )


def offer(name: str, family: str, vcpus: int, **changes: Any) -> SkuOffer:
    return SkuOffer(name=name, family=family, vcpus=vcpus, **({"zones": ["1", "2", "3"]} | changes))


def t4(**changes: Any) -> SkuOffer:
    return offer(T4, T4_FAMILY, 4, **changes)


def a100(**changes: Any) -> SkuOffer:
    return offer(A100, A100_FAMILY, 24, **changes)


def test_a_size_restricted_for_the_subscription_is_dropped_with_its_reason_code() -> None:
    request = build_request(nodePool={"vmSize": T4, "alternativeVmSizes": [A100]})
    plan = judge(request, view(t4(restricted="NotAvailableForSubscription"), a100()), PRICES)
    assert [c.fits for c in plan.candidates] == [False, True]
    assert plan.candidates[0].reasons == [
        f"{T4} is restricted for this subscription in eastus (NotAvailableForSubscription)"
    ]
    assert plan.chosen is not None
    assert plan.chosen.vm_size == A100


def test_only_the_zones_a_size_is_offered_in_stay() -> None:
    request = build_request(nodePool={"zones": ["1", "2"]})
    plan = judge(
        request, view(t4(zones=["1", "3"], zone_restriction="NotAvailableForSubscription")), PRICES
    )
    assert [(c.zones, c.fits) for c in plan.candidates] == [
        (["1", "2"], False),
        (["1"], True),
        (["2"], False),
    ]
    assert plan.candidates[2].reasons == [
        f"{T4} is not offered in zone(s) 2 (NotAvailableForSubscription)"
    ]
    assert [c.zones for c in plan.fitting] == [["1"]]


def test_spot_is_held_to_low_priority_quota_not_the_family() -> None:
    request = build_request(nodePool={"spot": {"maxPrice": -1}, "nodeCount": 3})
    plan = judge(request, view(t4(), limits={"lowPriorityCores": 8, T4_FAMILY: 0}), PRICES)
    assert plan.error is not None
    assert plan.error.code == "QuotaExceeded"
    assert [q.name for q in plan.candidates[0].quota] == ["lowPriorityCores"]
    assert f"{T4} needs 12 vCPUs of lowPriorityCores in eastus: limit 8, used 0" in (
        plan.error.message
    )


def test_used_quota_counts() -> None:
    plan = judge(build_request(), view(t4(), used={T4_FAMILY: 98}), PRICES)
    assert plan.error is not None
    assert "limit 100, used 98" in plan.error.message
    assert "to at least 102 (now 100)" in plan.error.hint


def test_a_family_quota_is_found_whatever_the_case_of_its_name() -> None:
    h100 = offer("Standard_NC40ads_H100_v5", "StandardNCadsH100v5Family", 40)
    request = build_request(nodePool={"vmSize": "Standard_NC40ads_H100_v5"})
    plan = judge(request, view(h100, limits={"standardNCadsH100v5Family": 0}), PRICES)
    assert plan.error is not None
    assert plan.error.code == "QuotaExceeded"
    assert [q.name for q in plan.candidates[0].quota] == ["standardNCadsH100v5Family", "cores"]


def test_what_could_not_be_read_is_not_judged_by() -> None:
    unread = ComputeView(location="eastus", unchecked={"skus": "AuthorizationFailed: no"})
    plan = judge(build_request(), unread, PRICES)
    assert plan.can_run
    assert plan.candidates[0].quota == []


def test_a_size_not_offered_in_the_location_is_sku_not_available() -> None:
    plan = judge(build_request(), view(a100()), PRICES)
    assert plan.error is not None
    assert plan.error.code == "SkuNotAvailable"
    assert f"{T4} is not offered in eastus" in plan.error.message


def test_the_quota_link_is_the_one_arms_quota_exceeded_message_gives() -> None:
    # The shape of the link in ARM's QuotaExceeded message ("Submit a request for Quota increase
    # at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView/
    # Parameters/%7B%22subscriptionId%22:%22<sub>%22,%22command%22:%22openQuotaApprovalBlade%22,
    # %22quotas%22:[%7B%22location%22:%22eastus%22,%22providerId%22:%22Microsoft.Compute%22,...")
    quota = QuotaCheck(name="cores", location="eastus", limit=10, used=10, needed=2)
    assert quota_page("sub-1", quota) == (
        "https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView/"
        "Parameters/%7B%22subscriptionId%22:%22sub-1%22,%22command%22:%22openQuotaApprovalBlade"
        "%22,%22quotas%22:[%7B%22location%22:%22eastus%22,%22providerId%22:%22Microsoft.Compute"
        "%22,%22resourceName%22:%22cores%22,%22quotaRequest%22:%7B%22properties%22:%7B%22limit"
        "%22:12,%22unit%22:%22Count%22,%22name%22:%7B%22value%22:%22cores%22%7D%7D%7D%7D]%7D"
    )


@pytest.mark.parametrize(
    ("budget", "default", "maximum", "expected"),
    [
        pytest.param({"maxCost": 5}, 2.0, 10.0, (5.0, "request"), id="request-wins"),
        pytest.param(None, 2.0, 10.0, (2.0, "GPUPROV_DEFAULT_BUDGET"), id="default"),
        pytest.param(None, 20.0, 10.0, (10.0, "GPUPROV_DEFAULT_BUDGET"), id="default-capped"),
        pytest.param(None, 0.0, 10.0, (10.0, "GPUPROV_MAX_BUDGET"), id="maximum"),
        pytest.param(None, 0.0, 0.0, None, id="none"),
    ],
)
def test_the_budget_in_force(
    budget: dict[str, float] | None, default: float, maximum: float, expected: Any
) -> None:
    request = build_request(**({"budget": budget} if budget else {}))
    found = budget_for(request, default, maximum)
    assert (None if found is None else (found.max_cost, found.source)) == expected


def test_an_estimate_over_the_budget_is_refused_with_both_numbers() -> None:
    request = build_request(nodePool={"nodeCount": 2}, job={"timeoutMinutes": 45})
    budget = BudgetLimit(max_cost=1.0, currency="USD", source="request")
    plan = judge(request, view(t4()), PRICES, budget)
    assert plan.estimate is not None
    assert plan.estimate.hours == 1.0  # 15 min provisioning + 45 min job
    assert plan.estimate.cost == 1.05  # 2 nodes x 0.526 USD/h x 1 h
    assert plan.error is not None
    assert plan.error.code == "OverBudget"
    assert "The estimate 1.05 USD" in plan.error.message
    assert "over the budget of 1.00 USD (request)" in plan.error.message


def test_a_pool_left_running_is_estimated_for_its_time_to_live() -> None:
    request = build_request(
        cleanup={"deleteNodePool": False, "deleteCluster": False, "ttlHours": 2}
    )
    plan = judge(request, view(t4()), PRICES)
    assert plan.estimate is not None
    assert plan.estimate.hours == 2.75


def test_actual_cost_is_node_seconds_at_the_hourly_price() -> None:
    assert actual_cost(2, 3.6, 1800) == 3.6
    assert actual_cost(1, 1.0, -5) == 0.0
