"""Proof records in Blob storage: container `proofs` of the app's own storage account
(shared/blobs.py), one blob `{requestId}.json` per request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.blobs import ensure_container, storage_reason
from shared.closing import Closing

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import ContainerClient

CONTAINER = "proofs"


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
        from shared.blobs import StorageMissing, app_container

        try:
            return cls(app_container(values, CONTAINER, credential=credential))
        except StorageMissing as exc:
            raise ProofStoreError(str(exc)) from None

    def put(self, request_id: str, report: dict[str, Any]) -> str:
        """Store (or replace: activities run at least once) the request's proof; its URL."""
        from azure.core.exceptions import AzureError
        from azure.storage.blob import ContentSettings

        try:
            ensure_container(self._container)
            blob = self._container.get_blob_client(blob_name(request_id))
            blob.upload_blob(
                json.dumps(report, indent=2).encode(),
                overwrite=True,
                content_settings=ContentSettings(content_type="application/json"),
            )
        except AzureError as exc:
            raise ProofStoreError(
                f"cannot store proof of {request_id}: {storage_reason(exc)}"
            ) from None
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
            raise ProofStoreError(
                f"cannot read proof of {request_id}: {storage_reason(exc)}"
            ) from None
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
