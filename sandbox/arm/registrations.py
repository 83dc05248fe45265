"""Microsoft.Features preview-feature registrations and resource-provider registrations.

A registration turns Registered after a number of reads answered "Registering" or after its
simulated time, whichever comes first (ArmTimings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.arm.model import ArmError, ArmTimings, Reply
from sandbox.arm.schema import API_VERSIONS

CONTAINER_SERVICE = "Microsoft.ContainerService"


@dataclass
class _Registration:
    """A feature or resource-provider registration in one subscription."""

    namespace: str
    name: str
    state: str
    requested_at: float = 0.0
    reads: int = 0


class Registrations:
    """Feature and provider registration state per subscription, and the routes over it."""

    def __init__(self, timings: ArmTimings) -> None:
        self.timings = timings
        self._features: dict[tuple[str, str, str], _Registration] = {}
        self._providers: dict[tuple[str, str], _Registration] = {}

    def set_provider_state(self, subscription: str, namespace: str, state: str) -> None:
        self._providers[(subscription.lower(), namespace.lower())] = _Registration(
            namespace, "", state
        )

    def set_feature_state(self, subscription: str, namespace: str, name: str, state: str) -> None:
        key = (subscription.lower(), namespace.lower(), name.lower())
        self._features[key] = _Registration(namespace, name, state)

    def settle(self, now: float) -> None:
        """Registrations whose simulated time is up turn Registered."""
        for registrations, seconds in (
            (self._features.values(), self.timings.feature_registration_seconds),
            (self._providers.values(), self.timings.provider_registration_seconds),
        ):
            for reg in registrations:
                if reg.state == "Registering" and now - reg.requested_at >= seconds:
                    reg.state = "Registered"

    def _read_registration(self, reg: _Registration, reads_needed: int) -> None:
        if reg.state == "Registering":
            reg.reads += 1
            if reg.reads > reads_needed:
                reg.state = "Registered"

    def feature_state(self, sub: str, ns: str, name: str) -> str:
        """A feature's registration state, without counting as a read."""
        found = self._features.get((sub.lower(), ns.lower(), name.lower()))
        return found.state if found else "NotRegistered"

    def _feature(self, sub: str, ns: str, name: str) -> _Registration:
        key = (sub.lower(), ns.lower(), name.lower())
        if key not in self._features:
            self._features[key] = _Registration(ns, name, "NotRegistered")
        return self._features[key]

    def _feature_json(self, sub: str, reg: _Registration) -> dict[str, Any]:
        return {
            "id": (
                f"/subscriptions/{sub}/providers/Microsoft.Features/providers/"
                f"{reg.namespace}/features/{reg.name}"
            ),
            "name": f"{reg.namespace}/{reg.name}",
            "type": "Microsoft.Features/providers/features",
            "properties": {"state": reg.state},
        }

    def feature_get(self, sub: str, ns: str, name: str) -> Reply:
        reg = self._feature(sub, ns, name)
        self._read_registration(reg, self.timings.feature_registration_reads)
        return Reply(200, self._feature_json(sub, reg))

    def feature_register(self, sub: str, ns: str, name: str, now: float) -> Reply:
        reg = self._feature(sub, ns, name)
        if reg.state != "Registered":
            reg.state, reg.requested_at, reg.reads = "Registering", now, 0
        return Reply(200, self._feature_json(sub, reg))

    def feature_unregister(self, sub: str, ns: str, name: str) -> Reply:
        reg = self._feature(sub, ns, name)
        reg.state = "Unregistered"
        return Reply(200, self._feature_json(sub, reg))

    def feature_list(self, sub: str, ns: str | None) -> Reply:
        found = [
            self._feature_json(sub, reg)
            for (s, n, _), reg in self._features.items()
            if s == sub.lower() and (ns is None or n == ns.lower())
        ]
        return Reply(200, {"value": found})

    def _provider(self, sub: str, ns: str) -> _Registration:
        key = (sub.lower(), ns.lower())
        if key not in self._providers:
            self._providers[key] = _Registration(ns, "", "Registered")
        return self._providers[key]

    def _provider_json(self, sub: str, reg: _Registration) -> dict[str, Any]:
        resource_types: list[dict[str, Any]] = []
        if reg.namespace.lower() == CONTAINER_SERVICE.lower():
            api_versions = sorted(API_VERSIONS, reverse=True)
            resource_types = [
                {"resourceType": kind, "locations": [], "apiVersions": api_versions}
                for kind in (
                    "managedClusters",
                    "managedClusters/agentPools",
                    "locations/operations",
                )
            ]
        return {
            "id": f"/subscriptions/{sub}/providers/{reg.namespace}",
            "namespace": reg.namespace,
            "registrationState": reg.state,
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": resource_types,
        }

    def provider_get(self, sub: str, ns: str) -> Reply:
        reg = self._provider(sub, ns)
        self._read_registration(reg, self.timings.provider_registration_reads)
        return Reply(200, self._provider_json(sub, reg))

    def provider_list(self, sub: str) -> Reply:
        found = [
            self._provider_json(sub, reg)
            for (s, _), reg in self._providers.items()
            if s == sub.lower()
        ]
        return Reply(200, {"value": found})

    def provider_register(self, sub: str, ns: str, now: float) -> Reply:
        reg = self._provider(sub, ns)
        if reg.state != "Registered":
            reg.state, reg.requested_at, reg.reads = "Registering", now, 0
        return Reply(200, self._provider_json(sub, reg))

    def provider_unregister(self, sub: str, ns: str) -> Reply:
        reg = self._provider(sub, ns)
        reg.state = "Unregistered"
        return Reply(200, self._provider_json(sub, reg))

    def require_container_service(self, sub: str) -> None:
        if self._provider(sub, CONTAINER_SERVICE).state != "Registered":
            raise ArmError(
                409,
                "MissingSubscriptionRegistration",
                f"The subscription is not registered to use namespace '{CONTAINER_SERVICE}'. "
                "See https://aka.ms/rps-not-found for how to register subscriptions.",
            )
