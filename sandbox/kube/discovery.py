"""API discovery derived from the kinds: legacy lists and aggregated discovery (apidiscovery v2).

kubectl 1.32 asks `/api` and `/apis` for
`application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList` first (aggregated
discovery, GA in 1.30) and falls back to per-group-version lists when the answer is a plain
APIVersions/APIGroupList (client-go discovery/aggregated_discovery.go).
"""

from __future__ import annotations

import hashlib
from itertools import groupby

from sandbox.kube.kinds import JSON, KINDS, Kind

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "log": ["get"]}
"""Only the subresources the simulator serves are advertised."""


def wants_aggregated(accept: str) -> bool:
    """Whether the Accept header asks for apidiscovery.k8s.io/v2 first among what we serve."""
    for option in accept.split(","):
        parts = {p.strip() for p in option.split(";")}
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= parts:
            return True
        if option.split(";")[0].strip() in ("application/json", "*/*"):
            return False
    return False


def _by_group() -> list[tuple[str, list[Kind]]]:
    ordered = sorted(KINDS.values(), key=lambda k: (k.group, k.version, k.plural))
    return [(group, list(kinds)) for group, kinds in groupby(ordered, key=lambda k: k.group)]


def _hash(kind: Kind) -> str:
    return hashlib.sha256(f"{kind.group}/{kind.version}/{kind.kind}".encode()).hexdigest()[:11]


def api_versions(server_address: str) -> JSON:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _groups() -> list[JSON]:
    groups = []
    for group, kinds in _by_group():
        if not group:
            continue
        version = kinds[0].version
        entry = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
    return groups


def api_group_list() -> JSON:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": _groups()}


def api_group(name: str) -> JSON | None:
    """`GET /apis/<group>`: the APIGroup, or None when the group is not served."""
    found = next((group for group in _groups() if group["name"] == name), None)
    return None if found is None else {"kind": "APIGroup", "apiVersion": "v1", **found}


def resource_list(group: str, version: str) -> JSON | None:
    """The APIResourceList of one group-version, or None when it is not served."""
    kinds = [k for k in KINDS.values() if (k.group, k.version) == (group, version)]
    if not kinds:
        return None
    resources: list[JSON] = []
    for kind in sorted(kinds, key=lambda k: k.plural):
        entry: JSON = {
            "name": kind.plural,
            "singularName": kind.singular,
            "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": kind.verbs,
        }
        if kind.short_names:
            entry["shortNames"] = list(kind.short_names)
        if kind.categories:
            entry["categories"] = list(kind.categories)
        if kind.listable:
            entry["storageVersionHash"] = _hash(kind)
        resources.append(entry)
        for sub in kind.subresources:
            resources.append(
                {
                    "name": f"{kind.plural}/{sub}",
                    "singularName": "",
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": _SUBRESOURCE_VERBS[sub],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": kinds[0].api_version,
        "resources": resources,
    }


def aggregated(core: bool) -> JSON:
    """The APIGroupDiscoveryList for `/api` (core) or `/apis` (every named group)."""
    items = []
    for group, kinds in _by_group():
        if bool(group) == core:
            continue
        resources = []
        for kind in sorted(kinds, key=lambda k: k.plural):
            response_kind = {"group": kind.group, "version": kind.version, "kind": kind.kind}
            entry: JSON = {
                "resource": kind.plural,
                "responseKind": response_kind,
                "scope": "Namespaced" if kind.namespaced else "Cluster",
                "singularResource": kind.singular,
                "verbs": kind.verbs,
            }
            if kind.short_names:
                entry["shortNames"] = list(kind.short_names)
            if kind.categories:
                entry["categories"] = list(kind.categories)
            if kind.subresources:
                entry["subresources"] = [
                    {
                        "subresource": sub,
                        "responseKind": response_kind,
                        "verbs": _SUBRESOURCE_VERBS[sub],
                    }
                    for sub in kind.subresources
                ]
            resources.append(entry)
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [
                    {"version": kinds[0].version, "resources": resources, "freshness": "Current"}
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
