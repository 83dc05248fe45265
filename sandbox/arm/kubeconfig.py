"""The kubeconfig listClusterUserCredential returns, shaped like the one AKS returns.

Local-account clusters get a bearer token; Entra ID clusters get the kubelogin exec plugin (AKS's
default `format=exec`) or the legacy azure auth-provider (`format=azure`).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from sandbox.cloud import ClusterAccess

# The AKS AAD server application and the Azure CLI client id, as they appear in AKS kubeconfigs.
AKS_AAD_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
AZURE_CLI_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
KUBELOGIN_INSTALL_HINT = (
    "\nkubelogin is not installed which is required to connect to AAD enabled cluster.\n\n"
    "To learn more, please go to https://aka.ms/aks/kubelogin\n"
)


def build_kubeconfig(
    *,
    cluster_name: str,
    resource_group: str,
    access: ClusterAccess,
    entra_tenant_id: str | None,
    credential_format: str | None,
) -> bytes:
    """YAML bytes of a kubeconfig for one cluster; `entra_tenant_id` set for Entra ID clusters."""
    user_name = f"clusterUser_{resource_group}_{cluster_name}"
    ca_data = base64.b64encode(Path(access.ca_path).read_bytes()).decode("ascii")
    user: dict[str, Any]
    if entra_tenant_id is None:
        user = {"token": access.token}
    elif (credential_format or "exec").lower() == "azure":
        user = {
            "auth-provider": {
                "name": "azure",
                "config": {
                    "apiserver-id": AKS_AAD_SERVER_ID,
                    "client-id": AZURE_CLI_CLIENT_ID,
                    "config-mode": "1",
                    "environment": "AzurePublicCloud",
                    "tenant-id": entra_tenant_id,
                },
            }
        }
    else:
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "kubelogin",
                "args": [
                    "get-token",
                    *("--environment", "AzurePublicCloud"),
                    *("--server-id", AKS_AAD_SERVER_ID),
                    *("--client-id", AZURE_CLI_CLIENT_ID),
                    *("--tenant-id", entra_tenant_id),
                    *("--login", "devicecode"),
                ],
                "env": None,
                "installHint": KUBELOGIN_INSTALL_HINT,
                "interactiveMode": "IfAvailable",
                "provideClusterInfo": False,
            }
        }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"certificate-authority-data": ca_data, "server": access.server},
            }
        ],
        "contexts": [
            {"name": cluster_name, "context": {"cluster": cluster_name, "user": user_name}}
        ],
        "current-context": cluster_name,
        "preferences": {},
        "users": [{"name": user_name, "user": user}],
    }
    return yaml.safe_dump(config, sort_keys=False).encode("utf-8")
