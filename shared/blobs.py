"""A container of the app's own storage account (`AzureWebJobsStorage`), as the Functions host
reads that setting: a connection string locally (Azurite in the sandbox), or identity-based on
Azure (`AzureWebJobsStorage__blobServiceUri`, or `__accountName`, with the app's managed
identity). The SDK is imported when a container is opened, not when this module loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import ContainerClient

SETTING = "AzureWebJobsStorage"


class StorageMissing(RuntimeError):
    """The settings name no usable storage account; the message says what to set."""


def app_container(
    values: Mapping[str, str],
    name: str,
    *,
    credential: TokenCredential | None = None,
    **client: Any,
) -> ContainerClient:
    """The container `name` of the storage account the app settings name; `client` options
    (retries, timeouts) go to the SDK's client."""
    from azure.storage.blob import ContainerClient

    connection = values.get(SETTING, "")
    if connection:
        try:
            return ContainerClient.from_connection_string(connection, name, **client)
        except ValueError as exc:
            raise StorageMissing(f"{SETTING} is not a storage connection string ({exc})") from None
    url = values.get(f"{SETTING}__blobServiceUri", "")
    account = values.get(f"{SETTING}__accountName", "")
    if not url and account:
        url = f"https://{account}.blob.core.windows.net"
    if not url:
        raise StorageMissing(
            f"no storage account: set {SETTING} (a connection string) or "
            f"{SETTING}__accountName in the settings"
        )
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return ContainerClient(url, name, credential=credential, **client)


def ensure_container(container: ContainerClient) -> None:
    """Create the container unless it exists (a write's first step; another writer may win)."""
    import contextlib

    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        container.create_container()


def storage_reason(error: Exception) -> str:
    """The first line of what Storage (or the SDK) said, for a message that says what failed."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return str(message).splitlines()[0]
