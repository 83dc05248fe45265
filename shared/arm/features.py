"""Preview features: register each one, poll until `Registered`, then register its provider again.

Called until `done`, each time with the previous answer. Nothing is written when every feature
was already Registered at the first read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from azure.mgmt.resource.features import FeatureClient
from azure.mgmt.resource.resources import ResourceManagementClient
from pydantic import Field

from shared.errors import classified
from shared.request import PreviewFeature
from shared.wire import HistoryModel

REGISTERED = "Registered"
REGISTERING = "Registering"


class FeatureState(HistoryModel):
    namespace: str
    name: str
    state: str
    """NotRegistered, Registering, Registered, ... as Microsoft.Features reports it."""


class ProviderState(HistoryModel):
    namespace: str
    state: str
    """registrationState of the resource provider."""


class FeatureRegistration(HistoryModel):
    """Where preview-feature registration stands; pass it back as `previous` on the next call."""

    features: list[FeatureState]
    providers: list[ProviderState] = Field(default_factory=list)
    """The providers registered again after the features (empty until that happens)."""
    provider_refresh_needed: bool = False
    """Some feature was not Registered when first read: its provider must be registered again."""

    @property
    def done(self) -> bool:
        return all(f.state == REGISTERED for f in self.features) and (
            not self.provider_refresh_needed
            or (bool(self.providers) and all(p.state == REGISTERED for p in self.providers))
        )


def register_features(
    features_client: FeatureClient,
    resources_client: ResourceManagementClient,
    features: Sequence[PreviewFeature],
    previous: FeatureRegistration | None = None,
) -> FeatureRegistration:
    """Register what is not yet registered; once all are, register their providers again."""
    states: list[FeatureState] = []
    with classified():
        for feature in features:
            found = features_client.features.get(feature.namespace, feature.name)
            state = _feature_state(found.properties)
            if state not in (REGISTERED, REGISTERING):
                registered = features_client.features.register(feature.namespace, feature.name)
                state = _feature_state(registered.properties)
            states.append(FeatureState(namespace=feature.namespace, name=feature.name, state=state))
    refresh_needed = any(s.state != REGISTERED for s in states) or (
        previous is not None and previous.provider_refresh_needed
    )
    providers: list[ProviderState] = []
    if refresh_needed and all(s.state == REGISTERED for s in states):
        providers = _refresh_providers(
            resources_client,
            sorted({f.namespace for f in features}),
            already=previous is not None and bool(previous.providers),
        )
    return FeatureRegistration(
        features=states, providers=providers, provider_refresh_needed=refresh_needed
    )


def read_features(
    features_client: FeatureClient, features: Sequence[PreviewFeature]
) -> list[FeatureState]:
    """Each feature's state, read only (the preflight's: register-features registers)."""
    with classified():
        return [
            FeatureState(
                namespace=feature.namespace,
                name=feature.name,
                state=_feature_state(
                    features_client.features.get(feature.namespace, feature.name).properties
                ),
            )
            for feature in features
        ]


def _refresh_providers(
    client: ResourceManagementClient, namespaces: list[str], *, already: bool
) -> list[ProviderState]:
    """Register the providers once (so AKS picks the features up), then only read them."""
    providers: list[ProviderState] = []
    with classified():
        for namespace in namespaces:
            if already:
                provider = client.providers.get(namespace)
            else:
                provider = client.providers.register(namespace)
            state = provider.registration_state or "Unknown"
            providers.append(ProviderState(namespace=namespace, state=state))
    return providers


def _feature_state(properties: Any) -> str:
    return str(getattr(properties, "state", None) or "NotRegistered")
