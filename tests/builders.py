"""The one way tests build a request: a document from a base and changes, then parsed as the app
parses it (validation and the operator's defaults), so a test request is one a user could send.

`request_document` starts from the smallest valid request (MINIMAL, id `req-1`),
`seed_document` from examples/seed-walkthrough.json; `build_request` parses one as the app
does, `contract_request` skips the policy (for what a step does with what policy refuses).
Changes are camelCase top-level fields: a dict value is merged into the dict it replaces (one
level), anything else replaces the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared.request import ProvisionRequest
from shared.settings import Settings
from shared.validation import parse_request
from tests.conftest import ROOT

SEED_PATH = ROOT / "examples" / "seed-walkthrough.json"
MINIMAL: dict[str, Any] = {
    "apiVersion": "gpuprov/v1",
    "subscriptionId": "00000000-0000-0000-0000-000000000000",
    "resourceGroup": "myResourceGroup",
    "location": "eastus",
    "target": {"kind": "newCluster", "clusterName": "myAKSCluster"},
}
"""The smallest valid request: no requestId (the app makes one), every default taken."""


def request_document(*layers: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """MINIMAL under id `req-1`, with each layer and then `changes` applied."""
    return _apply({**MINIMAL, "requestId": "req-1"}, *layers, changes)


def seed_document(*layers: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """The seed walkthrough, with each layer and then `changes` applied."""
    return _apply(json.loads(SEED_PATH.read_text()), *layers, changes)


def parse(document: Mapping[str, Any], settings: Settings | None = None) -> ProvisionRequest:
    """The request as the app sees it, under `settings` (default: no settings at all)."""
    return parse_request(json.dumps(document), settings or Settings.from_env({}))


def build_request(*layers: Mapping[str, Any], **changes: Any) -> ProvisionRequest:
    """`request_document(...)` parsed: the request the app would act on."""
    return parse(request_document(*layers, **changes))


def contract_request(*layers: Mapping[str, Any], **changes: Any) -> ProvisionRequest:
    """`request_document(...)` checked by the contract only, without normalisation or the
    operator's policy: what a step does with a request policy would refuse (a pod asking for
    more GPUs than a node has) is only reachable this way."""
    return ProvisionRequest.model_validate(request_document(*layers, **changes))


def _apply(document: dict[str, Any], *layers: Mapping[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(document))  # no layer shares a dict with another document
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(document.get(key), dict):
                document[key] = {**document[key], **value}
            else:
                document[key] = value
    return document
