"""How to reach a cluster's API server (secret: used inside one activity, never returned).

The user kubeconfig gives the server and CA, with its token (local accounts); an Entra ID
cluster takes an Entra token for the AKS server application instead.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml
from azure.core.credentials import TokenCredential
from azure.mgmt.containerservice import ContainerServiceClient

from shared.credentials import ClusterCredentials
from shared.errors import StepError, classified
from shared.request import ProvisionRequest

AKS_SERVER_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
"""The AKS Entra ID server application: an Entra ID cluster's API server accepts its tokens."""


def cluster_credentials(
    aks: ContainerServiceClient, credential: TokenCredential, request: ProvisionRequest
) -> ClusterCredentials:
    """The request's cluster: its API server, CA and a bearer token for it."""
    name = request.target.cluster_name
    with classified():
        cluster = aks.managed_clusters.get(request.resource_group, name)
        results = aks.managed_clusters.list_cluster_user_credentials(request.resource_group, name)
    kubeconfigs = results.kubeconfigs or []
    if not kubeconfigs or kubeconfigs[0].value is None:
        raise StepError("permanent", "NoKubeconfig", f"Cluster {name} returned no kubeconfig.")
    server, ca_pem, user = _parse_kubeconfig(bytes(kubeconfigs[0].value))
    properties = cluster.properties
    if properties is not None and properties.aad_profile is not None:
        token = credential.get_token(AKS_SERVER_SCOPE).token
    else:
        token = str(user.get("token") or "")
        if not token:
            raise StepError(
                "permanent",
                "NoTokenInKubeconfig",
                f"The user kubeconfig of cluster {name} has no bearer token.",
            )
    return ClusterCredentials(server=server, ca_pem=ca_pem, token=token)


def _parse_kubeconfig(raw: bytes) -> tuple[str, bytes, dict[str, Any]]:
    """(server, CA PEM, user entry) of the kubeconfig's current context."""
    config = yaml.safe_load(raw)
    if not isinstance(config, dict):
        raise StepError("permanent", "BadKubeconfig", "The cluster's kubeconfig is not a mapping.")
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    context: dict[str, Any] = contexts.get(config.get("current-context")) or next(
        iter(contexts.values()), {}
    )
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
    users = {u["name"]: u["user"] for u in config.get("users") or []}
    cluster = clusters.get(context.get("cluster")) or {}
    server = str(cluster.get("server") or "")
    ca_data = str(cluster.get("certificate-authority-data") or "")
    if not server or not ca_data:
        raise StepError(
            "permanent", "BadKubeconfig", "The cluster's kubeconfig names no server or CA."
        )
    user = users.get(context.get("user")) or {}
    return server, base64.b64decode(ca_data), user if isinstance(user, dict) else {}
