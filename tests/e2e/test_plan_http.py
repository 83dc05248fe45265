"""POST /api/plan through the local Functions host: the preflight over HTTP, with no side effect.

Covers: the function key is required; the seed walkthrough's plan chooses Standard_NC4as_T4_v3
with a positive estimate; an ND H100 v5 pool (no quota in the sandbox) answers canRun false with
a QuotaExceeded error naming the family and the quota request page, and nothing is written to
ARM; an invalid request answers 400 with its problems.
"""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import App

pytestmark = pytest.mark.timeout(300)


def test_http_plan(app: App) -> None:
    url = f"{app.host.http_url}/api/plan"
    key = {"x-functions-key": app.host.function_key}
    with requests.Session() as http:
        assert http.post(url, json=app.request()).status_code == 401

        seed = http.post(url, json=app.request(), headers=key, timeout=60)
        assert seed.status_code == 200, seed.text
        assert seed.json()["canRun"] is True
        assert seed.json()["chosen"]["vmSize"] == "Standard_NC4as_T4_v3"
        assert seed.json()["estimate"]["cost"] > 0

        h100 = app.request(nodePool={"vmSize": "Standard_ND96isr_H100_v5"})
        refused = http.post(url, json=h100, headers=key, timeout=60)
        assert refused.status_code == 200, refused.text
        plan = refused.json()
        assert plan["canRun"] is False
        assert plan["chosen"] is None
        assert plan["error"]["code"] == "QuotaExceeded"
        assert "standardNDSH100v5Family in eastus: limit 0, used 0" in plan["error"]["message"]
        assert "https://aka.ms/ProdportalCRP/" in plan["error"]["hint"]

        invalid = http.post(url, json={**app.request(), "budget": {"maxCost": 0}}, headers=key)
        assert invalid.status_code == 400
        assert [e["path"] for e in invalid.json()["errors"]] == ["$.budget.maxCost"]
    assert [r for r in app.arm.requests if r.method in ("PUT", "POST", "DELETE")] == []
