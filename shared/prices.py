"""Hourly VM prices from the Azure Retail Prices API, with a dated snapshot when it is unreachable.

The API (https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices)
is public and unauthenticated: `GET https://prices.azure.com/api/retail/prices?$filter=...`
answers `{"Items": [...], "NextPageLink": ...}`, one item per meter, with `armSkuName`,
`armRegionName`, `retailPrice`, `unitOfMeasure` ("1 Hour"), `type` ("Consumption") and a
`meterName` ending in " Spot" for spot prices (and "Low Priority" for the older meters).
`retail_prices_snapshot.json` holds items of the same shape with the date they were taken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PRICES_API = "https://prices.azure.com/api/retail/prices"
SNAPSHOT = Path(__file__).with_name("retail_prices_snapshot.json")
FLEX_SNAPSHOT = Path(__file__).with_name("flex_prices_snapshot.json")


@dataclass(frozen=True)
class Price:
    """USD per hour for one VM, and where the number came from."""

    hourly: float
    currency: str
    source: str


@cache
def snapshot(path: Path = SNAPSHOT) -> dict[str, Any]:
    """A dated file of Retail Prices API items: the API's answer plus `_snapshot` (its date,
    source and `$filter`). The VM sizes' by default, Flex Consumption's at FLEX_SNAPSHOT."""
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _dated(data: dict[str, Any]) -> str:
    """Where a snapshot's price came from, as a Price's `source` says it."""
    return f"snapshot {data['_snapshot']['date']}"


def filter_for(vm_size: str, location: str) -> str:
    """The `$filter` that asks the API for one size's consumption meters in one region."""
    return (
        f"serviceName eq 'Virtual Machines' and armSkuName eq '{vm_size}' and "
        f"armRegionName eq '{location}' and priceType eq 'Consumption'"
    )


def _is_spot(item: dict[str, Any]) -> bool:
    meter = str(item.get("meterName") or "")
    return meter.endswith(" Spot") or meter.endswith(" Low Priority")


def pick(items: list[dict[str, Any]], vm_size: str, *, spot: bool) -> float | None:
    """The hourly Linux price of a size among API items (Windows meters name their product)."""
    for item in items:
        if (
            str(item.get("armSkuName", "")).lower() == vm_size.lower()
            and item.get("unitOfMeasure") == "1 Hour"
            and item.get("type", "Consumption") == "Consumption"
            and "Windows" not in str(item.get("productName", ""))
            and _is_spot(item) == spot
        ):
            return float(item["retailPrice"])
    return None


def from_snapshot(vm_size: str, *, spot: bool) -> Price | None:
    """The snapshot's price (taken in one region; used for every location)."""
    data = snapshot()
    hourly = pick(data["Items"], vm_size, spot=spot)
    if hourly is None:
        return None
    return Price(hourly, str(data["BillingCurrency"]), _dated(data))


def fetch(
    base_url: str, vm_size: str, location: str, *, spot: bool, verify: Any = True
) -> Price | None:
    """Ask the Retail Prices API (or the sandbox's); the snapshot when it cannot be reached."""
    import requests  # lazily: only the preflight needs it

    try:
        answer = requests.get(
            base_url, params={"$filter": filter_for(vm_size, location)}, timeout=10, verify=verify
        )
        answer.raise_for_status()
        hourly = pick(answer.json().get("Items") or [], vm_size, spot=spot)
    except (requests.RequestException, ValueError):
        return from_snapshot(vm_size, spot=spot)
    if hourly is None:
        return from_snapshot(vm_size, spot=spot)
    return Price(hourly, "USD", f"retail prices API ({urlparse(base_url).hostname})")


@dataclass(frozen=True)
class FlexPrice:
    """Flex Consumption on-demand meters: execution time per GB-s and one execution, in USD."""

    gb_second: float
    execution: float
    source: str


@cache
def flex_on_demand() -> FlexPrice:
    """The dated snapshot's `On Demand Execution Time` (per `1 GB Second`) and `On Demand Total
    Executions` (the API prices executions per `10`) meters."""
    data = snapshot(FLEX_SNAPSHOT)
    meters = {item["meterName"]: item for item in data["Items"]}
    time, count = meters["On Demand Execution Time"], meters["On Demand Total Executions"]
    per = float(count["unitOfMeasure"])
    return FlexPrice(
        float(time["retailPrice"]),
        float(count["retailPrice"]) / per,
        _dated(data),
    )
