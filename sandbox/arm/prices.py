"""The Azure Retail Prices API shape (`GET /api/retail/prices?$filter=...`), from the snapshot.

Public and unauthenticated like the real one (docs: learn.microsoft.com/rest/api/cost-management/
retail-prices/azure-retail-prices). `$filter` takes `field eq 'value'` terms joined by `and` (what
the provisioner and the docs' examples send; `priceType` filters `type`). The snapshot was taken in
one region: the sandbox answers it for whichever `armRegionName` is asked.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.arm.model import ArmError, Reply
from shared.prices import snapshot

_TERM = re.compile(r"^\s*(\w+)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def _terms(expression: str) -> dict[str, str]:
    terms: dict[str, str] = {}
    for part in (
        re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE) if expression else []
    ):
        match = _TERM.match(part)
        if match is None:
            raise ArmError(400, "BadRequest", f"Invalid $filter term: {part!r}")
        field = match.group(1)
        terms["type" if field.lower() == "pricetype" else field] = match.group(2)
    return terms


def retail_prices(query: dict[str, str]) -> Reply:
    terms = _terms(query.get("$filter", ""))
    region = terms.pop("armRegionName", None)
    items: list[dict[str, Any]] = []
    for item in snapshot()["Items"]:
        if all(str(item.get(k, "")).lower() == v.lower() for k, v in terms.items()):
            items.append({**item, "armRegionName": region} if region else item)
    return Reply(
        200,
        {
            "BillingCurrency": "USD",
            "CustomerEntityId": "Default",
            "CustomerEntityType": "Retail",
            "Items": items,
            "NextPageLink": None,
            "Count": len(items),
        },
    )
