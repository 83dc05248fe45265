"""What a stock Azure CLI needs before its first ARM call: cloud metadata, a token, subscriptions.

- `GET /metadata/endpoints?api-version=2022-09-01` (no auth): what `az cloud register
  --endpoint-resource-manager URL` reads (azure-cli `cloud/custom.py`
  `_populate_from_metadata_endpoint`, mapped by `core/cloud.py` `_arm_to_cli_mapper`). Every
  endpoint names the simulator, so nothing reaches a real Azure host.
- `GET /msi/token?api-version=2019-08-01&resource=...` with `X-IDENTITY-HEADER`: the App Service
  managed-identity endpoint that MSAL calls when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set
  (msal `managed_identity.py` `_obtain_token_on_app_service`). `az login --identity` decodes the
  token as a JWT (unverified) for its `tid` claim (azure-cli `_profile.py`), so it is one.
- `GET /subscriptions` and `GET /tenants`: what `az login` lists to build its accounts.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from sandbox.arm.model import ArmError, Reply

SANDBOX_TENANT_ID = "11111111-2222-4333-8444-555555555555"
"""The sandbox's Entra tenant (also named in Entra ID kubeconfigs)."""
SANDBOX_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
"""The subscription examples/ uses; always listed, with any other that has resource groups."""
MANAGED_IDENTITY_OBJECT_ID = "6b0f3f71-0b2a-4d35-9c77-3f3d6a5f2a10"
"""The sandbox's own identity, the one `az login --identity` gets: owner rights (the deployer)."""
APP_CLIENT_ID = "0d9a5c1e-7f3b-4c2a-9e61-8b4d2f7a3c55"
"""The app's user-assigned identity (AZURE_CLIENT_ID on Azure): a token asked for with this
client id is the app's, held to infra/permissions.json (authorization.py)."""
APP_OBJECT_ID = "3c7e2a90-5d14-4b6f-a8e2-1f9c0b7d4e63"
TOKEN_LIFETIME_SECONDS = 3600


def _b64(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def managed_identity_token(audience: str, object_id: str = MANAGED_IDENTITY_OBJECT_ID) -> str:
    """A JWT shaped like Entra's managed-identity tokens (the signature is not a real one)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": "sandbox"}
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{SANDBOX_TENANT_ID}/",
        "tid": SANDBOX_TENANT_ID,
        "oid": object_id,
        "sub": object_id,
        "idtyp": "app",
    }
    if object_id == APP_OBJECT_ID:
        claims["appid"] = APP_CLIENT_ID
    return f"{_b64(header)}.{_b64(claims)}.c2FuZGJveA"


def token_object_id(token: str, audience: str) -> str | None:
    """The `oid` of a token this endpoint issued for `audience`, None for any other token."""
    for object_id in (MANAGED_IDENTITY_OBJECT_ID, APP_OBJECT_ID):
        # az asks for the cloud's audience ("…/"), azure-identity for the scope minus /.default.
        for aud in (audience, audience.rstrip("/")):
            if token == managed_identity_token(aud, object_id):
                return object_id
    return None


def metadata_endpoints(base_url: str) -> Reply:
    """The cloud's endpoints, in the 2022-09-01 shape of ARM's `/metadata/endpoints`."""
    root = base_url.rstrip("/") + "/"
    return Reply(
        200,
        {
            "name": "AzureSandbox",
            "portal": root,
            "resourceManager": root,
            "authentication": {
                "loginEndpoint": root,
                "audiences": [root],
                "tenant": "common",
                "identityProvider": "AAD",
            },
            "graphAudience": root,
            "graph": root,
            "microsoftGraphResourceId": root,
            "suffixes": {"storage": "core.windows.net", "keyVaultDns": "vault.azure.net"},
        },
    )


def token(query: dict[str, str], headers: dict[str, str], identity_header: str) -> Reply:
    """The App Service managed-identity answer (token, expires_on, resource, token_type)."""
    sent = next((v for k, v in headers.items() if k.lower() == "x-identity-header"), "")
    if not identity_header or sent != identity_header:
        raise ArmError(401, "Unauthorized", "The X-IDENTITY-HEADER header is missing or wrong.")
    resource = query.get("resource", "")
    if not resource:
        raise ArmError(400, "BadRequest", "The resource query parameter is required.")
    # A user-assigned identity is asked for by `client_id` (msal managed_identity.py, App
    # Service: `client_id`); the app's own client id gets the app's token.
    app = query.get("client_id") == APP_CLIENT_ID
    expires_on = int(time.time()) + TOKEN_LIFETIME_SECONDS
    return Reply(
        200,
        {
            "access_token": managed_identity_token(
                resource, APP_OBJECT_ID if app else MANAGED_IDENTITY_OBJECT_ID
            ),
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": APP_CLIENT_ID if app else MANAGED_IDENTITY_OBJECT_ID,
        },
    )


def subscription_json(subscription: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{subscription}",
        "subscriptionId": subscription,
        "tenantId": SANDBOX_TENANT_ID,
        "displayName": "Sandbox subscription",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
    }


def tenants() -> Reply:
    return Reply(
        200,
        {
            "value": [
                {
                    "id": f"/tenants/{SANDBOX_TENANT_ID}",
                    "tenantId": SANDBOX_TENANT_ID,
                    "tenantCategory": "Home",
                    "displayName": "Sandbox",
                    "defaultDomain": "sandbox.onmicrosoft.com",
                    "domains": ["sandbox.onmicrosoft.com"],
                }
            ]
        },
    )
