"""Proof records in Blob storage: container `proofs`, one blob `{requestId}.json` per request.

The account is the app's own storage (`AzureWebJobsStorage`): a connection string locally
(Azurite in the sandbox), or identity-based on Azure (`AzureWebJobsStorage__blobServiceUri`, or
`__accountName`, with the app's managed identity), as the Functions host reads that setting. The
SDK is imported when a store is opened, not when this module loads.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.closing import Closing

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import ContainerClient

CONTAINER = "proofs"
SETTING = "AzureWebJobsStorage"


class ProofStoreError(RuntimeError):
    """The proof could not be read or written; the message says what to fix."""


class ProofNotFound(ProofStoreError):
    pass


def blob_name(request_id: str) -> str:
    return f"{request_id}.json"


class ProofStore(Closing):
    """Reads and writes `proofs/{requestId}.json`."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    @classmethod
    def from_values(
        cls, values: Mapping[str, str], credential: TokenCredential | None = None
    ) -> ProofStore:
        """The store of the storage account the app settings name."""
        from azure.storage.blob import ContainerClient

        connection = values.get(SETTING, "")
        if connection:
            try:
                return cls(ContainerClient.from_connection_string(connection, CONTAINER))
            except ValueError as exc:
                raise ProofStoreError(
                    f"{SETTING} is not a storage connection string ({exc})"
                ) from None
        url = values.get(f"{SETTING}__blobServiceUri", "")
        account = values.get(f"{SETTING}__accountName", "")
        if not url and account:
            url = f"https://{account}.blob.core.windows.net"
        if not url:
            raise ProofStoreError(
                f"no storage account: set {SETTING} (a connection string) or "
                f"{SETTING}__accountName in the settings"
            )
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        return cls(ContainerClient(url, CONTAINER, credential=credential))

    def put(self, request_id: str, report: dict[str, Any]) -> str:
        """Store (or replace: activities run at least once) the request's proof; its URL."""
        from azure.core.exceptions import AzureError, ResourceExistsError
        from azure.storage.blob import ContentSettings

        try:
            with contextlib.suppress(ResourceExistsError):
                self._container.create_container()
            blob = self._container.get_blob_client(blob_name(request_id))
            blob.upload_blob(
                json.dumps(report, indent=2).encode(),
                overwrite=True,
                content_settings=ContentSettings(content_type="application/json"),
            )
        except AzureError as exc:
            raise ProofStoreError(f"cannot store proof of {request_id}: {_reason(exc)}") from None
        return str(blob.url)

    def get(self, request_id: str) -> dict[str, Any]:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        blob = self._container.get_blob_client(blob_name(request_id))
        try:
            data = blob.download_blob().readall()
        except ResourceNotFoundError:
            raise ProofNotFound(
                f"no proof for request {request_id!r} in {CONTAINER}/: it is written when the "
                "request's verify-gpus step ends; check the request id"
            ) from None
        except AzureError as exc:
            raise ProofStoreError(f"cannot read proof of {request_id}: {_reason(exc)}") from None
        try:
            report = json.loads(data)
        except ValueError as exc:
            raise ProofStoreError(
                f"{CONTAINER}/{blob_name(request_id)} is not JSON ({exc})"
            ) from None
        if not isinstance(report, dict) or report.get("reportFormat") != "CTRF":
            raise ProofStoreError(f"{CONTAINER}/{blob_name(request_id)} is not a CTRF report")
        return report

    def close(self) -> None:
        self._container.close()


def _reason(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message).splitlines()[0]
