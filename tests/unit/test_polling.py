"""The polling policy (shared/polling.py) on a fake clock: which wait it picks, and why.

Covers: before the expected completion it sleeps until then (one long wait, bounded); after it,
with no GPU node waiting, it follows the server's Retry-After (or the default interval), backing
off with the time already waited; with GPU
nodes idle it checks as often as their price justifies, never closer than the shortest bound;
pricier GPUs mean checks at least as frequent; one check is priced as the Flex Consumption plan
bills a wake-up.
"""

from __future__ import annotations

import pytest

from shared.polling import PollBounds, WaitPrice, check_usd, next_delay, priced_interval

BOUNDS = PollBounds(shortest=2, longest_poll=120, default=30, longest_wait=3600, horizon=300)
T4 = WaitPrice(check_usd=0.0000532, gpu_usd_per_hour=0.526)
TWO_H100 = WaitPrice(check_usd=0.0000532, gpu_usd_per_hour=2 * 98.32)
NO_GPU = WaitPrice(check_usd=0.0000532)


def test_before_the_expected_completion_it_sleeps_until_then() -> None:
    delay = next_delay(elapsed=20, expected=300, retry_after=15, price=T4, bounds=BOUNDS)
    assert delay == 280


def test_a_long_expected_wait_is_cut_at_the_longest_wait() -> None:
    bounds = PollBounds(shortest=2, longest_poll=120, default=30, longest_wait=600, horizon=300)
    assert (
        next_delay(elapsed=0, expected=3000, retry_after=None, price=NO_GPU, bounds=bounds) == 600
    )


@pytest.mark.parametrize(("retry_after", "delay"), [(15, 15), (None, 30), (1, 10), (900, 120)])
def test_without_gpus_it_follows_the_server_within_bounds(
    retry_after: int | None, delay: int
) -> None:
    got = next_delay(elapsed=100, expected=90, retry_after=retry_after, price=NO_GPU, bounds=BOUNDS)
    assert got == delay


def test_a_wait_past_its_expected_time_without_gpus_backs_off_with_its_length() -> None:
    # 10 min into an operation expected in 5: a check a minute, not one per Retry-After of 15 s
    assert next_delay(elapsed=600, expected=300, retry_after=15, price=NO_GPU, bounds=BOUNDS) == 60
    assert (
        next_delay(elapsed=5000, expected=300, retry_after=15, price=NO_GPU, bounds=BOUNDS) == 120
    )


def test_with_idle_gpus_it_checks_as_often_as_their_price_justifies() -> None:
    t4 = next_delay(elapsed=0, expected=None, retry_after=None, price=T4, bounds=BOUNDS)
    h100 = next_delay(elapsed=0, expected=None, retry_after=None, price=TWO_H100, bounds=BOUNDS)
    assert BOUNDS.shortest <= h100 < t4 < BOUNDS.default
    assert h100 == BOUNDS.shortest  # two ND H100 v5 nodes: as often as the bounds allow


@pytest.mark.parametrize("retry_after", [1, 15, 600])
def test_with_idle_gpus_the_price_decides_whatever_retry_after_says(retry_after: int) -> None:
    priced = next_delay(elapsed=0, expected=None, retry_after=None, price=T4, bounds=BOUNDS)
    got = next_delay(elapsed=0, expected=None, retry_after=retry_after, price=T4, bounds=BOUNDS)
    assert got == priced


def test_the_priced_interval_balances_checks_against_idle_gpu_seconds() -> None:
    interval = priced_interval(T4, 300)
    assert interval is not None
    per_second = T4.gpu_usd_per_hour / 3600

    def cost(every: float) -> float:  # checks over the horizon + the answer seen half a wait late
        return 300 / every * T4.check_usd + per_second * every / 2

    assert cost(interval) <= min(cost(interval * 0.5), cost(interval * 2))
    assert priced_interval(NO_GPU, 300) is None


def test_one_check_costs_a_minimum_activity_period_and_its_executions() -> None:
    # 1 s x 2 GB at the dated on-demand GB-s price, plus three executions
    from shared.prices import flex_on_demand

    flex = flex_on_demand()
    assert check_usd() == pytest.approx(2 * flex.gb_second + 3 * flex.execution)
