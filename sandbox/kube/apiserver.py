"""The HTTP face of one simulated cluster: what kube-apiserver answers, derived from the kinds.

Routes: /version and the health checks, discovery (`/api`, `/apis`, group-versions, aggregated),
OpenAPI v2/v3, and the resource paths of every kind (list, watch, get, create, update, patch,
server-side apply, delete, status and log subresources). Content negotiation: JSON and YAML
bodies, Kubernetes protobuf bodies (decoded), JSON answers (clients list JSON after protobuf in
Accept, as they do for types a server serves only as JSON) and server-side Tables.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Callable

from sandbox.clock import Clock
from sandbox.kit import FaultRules, Request, Response, Router
from sandbox.kube import discovery, openapi, printing, protobuf
from sandbox.kube.apply import ApplyConflict, apply, track_update
from sandbox.kube.bodies import check_name, checked, decode, loads, loads_any
from sandbox.kube.cluster import Cluster
from sandbox.kube.controllers.kubelet import log_text
from sandbox.kube.errors import (
    conflict_error,
    fault_error,
    not_acceptable,
)
from sandbox.kube.kinds import KINDS, Kind
from sandbox.kube.objects import (
    JSON,
    SelectorError,
    field_selector_matches,
    label_selector_matches,
)
from sandbox.kube.patch import PatchError, json_patch, merge_patch, strategic_merge
from sandbox.kube.schema import definition_name
from sandbox.kube.store import ApiError, rfc3339
from sandbox.kube.streams import Streams

VERSION = {
    "major": "1",
    "minor": "33",
    "emulationMajor": "1",
    "emulationMinor": "33",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "32",
    "gitVersion": openapi.SERVER_VERSION,
    "gitCommit": "sandbox",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_PUBLIC = ("/version", "/healthz", "/livez", "/readyz")
_RESOURCE = (
    r"/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?"
)


class ApiServer:
    """Answers one cluster's requests; the simulator's condition guards all cluster state."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        changed: threading.Condition,
        clock: Clock,
        faults: FaultRules,
        token: Callable[[], str],
        live: Callable[[], bool],
    ) -> None:
        self.cluster = cluster
        self._changed = changed
        self._clock = clock
        self._faults = faults
        self._token = token
        self._live = live
        self._streams = Streams(cluster, changed, clock, live)
        self._router = Router()
        self._router.add("GET", r"/version/?", lambda r, _: Response.json(200, VERSION))
        self._router.add("GET", r"/(?:healthz|livez|readyz)(?:/.*)?", self._health)
        self._router.add("GET", r"/api/?", self._api)
        self._router.add("GET", r"/apis/?", self._apis)
        self._router.add("GET", r"/api/v1/?", self._group_version)
        self._router.add("GET", r"/apis/(?P<group>[^/]+)/?", self._group)
        self._router.add("GET", r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/?", self._group_version)
        self._router.add("GET", r"/openapi/v2", self._openapi_v2)
        self._router.add(
            "GET", r"/openapi/v3/?", lambda r, _: Response.json(200, openapi.v3_index())
        )
        self._router.add("GET", r"/openapi/v3/(?P<path>.+)", self._openapi_v3)
        self._router.add("*", _RESOURCE, self._resource)

    # --- entry --------------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        try:
            if not request.path.startswith(_PUBLIC):
                expected = self._token()
                if not expected or request.header("authorization") != f"Bearer {expected}":
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            response = self._router.dispatch(request)
            if response is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return response
        except ApiError as error:
            headers = {"Retry-After": "1"} if error.code == 429 else None
            return Response.json(error.code, error.status(), headers)
        except Exception as error:  # a simulator bug must not look like a network failure
            failure = ApiError(500, "InternalError", f"sandbox error: {error!r}")
            return Response.json(500, failure.status())

    @staticmethod
    def _health(request: Request, _: dict[str, str]) -> Response:
        if request.query.get("verbose") is not None:
            return Response.text(200, "[+]ping ok\n[+]etcd ok\nhealthz check passed\n")
        return Response.text(200, "ok")

    # --- discovery and OpenAPI ------------------------------------------------------------------

    def _api(self, request: Request, _: dict[str, str]) -> Response:
        if discovery.wants_aggregated(request.header("accept")):
            return Response.json(
                200, discovery.aggregated(core=True), content_type=discovery.AGGREGATED_V2
            )
        return Response.json(200, discovery.api_versions(request.header("host") or "127.0.0.1"))

    def _apis(self, request: Request, _: dict[str, str]) -> Response:
        if discovery.wants_aggregated(request.header("accept")):
            return Response.json(
                200, discovery.aggregated(core=False), content_type=discovery.AGGREGATED_V2
            )
        return Response.json(200, discovery.api_group_list())

    def _group(self, request: Request, params: dict[str, str]) -> Response:
        group = discovery.api_group(params["group"])
        if group is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Response.json(200, group)

    def _group_version(self, request: Request, params: dict[str, str]) -> Response:
        listing = discovery.resource_list(params.get("group", ""), params.get("version", "v1"))
        if listing is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Response.json(200, listing)

    def _openapi_v2(self, request: Request, _: dict[str, str]) -> Response:
        # kube-openapi serves JSON or protobuf (gnostic); this simulator serves JSON only, so a
        # protobuf-only Accept gets kube-openapi's 406 (client-go then fails over to v3).
        accept = request.header("accept")
        if accept and not any(
            part.split(";")[0].strip() in ("application/json", "*/*") for part in accept.split(",")
        ):
            raise not_acceptable(["application/json"])
        return Response(200, openapi.v2())

    def _openapi_v3(self, request: Request, params: dict[str, str]) -> Response:
        document = openapi.v3_documents().get(params["path"].strip("/"))
        if document is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Response(200, document, headers={"Cache-Control": "public, immutable"})

    # --- resources ----------------------------------------------------------------------------

    def _resource(self, request: Request, params: dict[str, str]) -> Response:
        group, version = params.get("group", ""), params.get("core") or params.get("version", "")
        namespace, plural = params.get("ns", ""), params["res"]
        name, sub = params.get("name", ""), params.get("sub", "")
        kind = next(
            (
                k
                for k in KINDS.values()
                if (k.group, k.version, k.plural) == (group, version, plural)
            ),
            None,
        )
        if kind is None and namespace and not group and not name:
            # /api/v1/namespaces/<name>/status: a subresource of a namespace.
            kind, name, sub, namespace = KINDS["namespaces"], namespace, plural, ""
        if (
            kind is None
            or (sub and sub not in kind.subresources)
            or (namespace and not kind.namespaced)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        method = request.method
        is_watch = method == "GET" and request.query.get("watch") in ("true", "1") and not name
        fault = self._faults.take(
            method,
            request.path,
            self.cluster.key,
            applies=lambda outcome: is_watch or outcome != "watch-disconnect",
        )
        if fault is not None and isinstance(fault.outcome, int):
            raise fault_error(fault.outcome, method, kind.plural, namespace, name)
        if fault is not None and not is_watch:
            raise ApiError(410, "Expired", "The provided continue parameter is too old")
        view = self._view(request, kind)
        if is_watch:
            outcome = fault.outcome if fault is not None else None
            matches = self._matcher(kind, namespace, request.query)
            return self._streams.watch(
                kind,
                request.query,
                matches,
                view,
                gone=outcome == "gone",
                disconnect=outcome == "watch-disconnect",
            )
        if method == "GET" and sub == "log" and request.query.get("follow") == "true":
            return self._streams.follow_log(namespace, name, request.query)
        with self._changed:
            self.cluster.settle(self._clock.now())
            self.cluster.dry_run = method != "GET" and request.query.get("dryRun") == "All"
            try:
                status, result = self._serve(request, kind, namespace, name, sub)
            finally:
                self.cluster.dry_run = False
            self.cluster.reconcile()
            self._changed.notify_all()
            if isinstance(result, str):
                return Response.text(status, result)
            if view == "table" and method == "GET" and kind.listable:
                listed = "items" in result
                items = result["items"] if listed else [result]
                meta = result["metadata"] if listed else {}
                if not listed:
                    meta = {"resourceVersion": result["metadata"].get("resourceVersion", "")}
                include = request.query.get("includeObject", "Metadata")
                shown = printing.table(kind, items, self.cluster.now, meta, include)
                return Response.json(status, shown, content_type=printing.TABLE_MEDIA_TYPE)
            return Response.json(status, result)

    @staticmethod
    def _view(request: Request, kind: Kind) -> str:
        """'table' or 'json' from the Accept header, or 406 as the API server's negotiation.

        apiserver's negotiation (apimachinery endpoints/handlers/negotiation) answers with the
        first media type in Accept that the resource's serializers support, and 406 NotAcceptable
        when there is none. kubectl's typed clients send `application/vnd.kubernetes.protobuf,
        application/json`; a server without protobuf for a type (as for custom resources)
        answers JSON, which is what this one does for every type.
        """
        accept = request.header("accept")
        if printing.wants_table(accept):
            return "table"
        if not accept:
            return "json"
        for option in accept.split(","):
            media = option.split(";")[0].strip()
            if media in ("application/json", "*/*", "application/*"):
                return "json"
        raise not_acceptable(["application/json", "application/yaml"])

    def _serve(
        self, request: Request, kind: Kind, namespace: str, name: str, sub: str
    ) -> tuple[int, JSON | str]:
        method, query = request.method, request.query
        cluster = self.cluster
        if method == "GET" and not name:
            return 200, self._list(kind, namespace, query)
        if method == "GET" and sub == "log":
            pod = cluster.get("pods", namespace, name)
            return 200, log_text(cluster.pod_log(pod, query.get("container")), pod, query)
        if method == "GET":
            return 200, cluster.get(kind.plural, namespace, name)
        manager = query.get("fieldManager") or request.header("user-agent").split("/")[0]
        now = rfc3339(self._clock.now())
        schema = {"$ref": "#/$defs/" + definition_name(kind.group, kind.version, kind.kind)}
        if method == "POST" and not name:
            document = decode(request, kind)
            declared = (document.get("metadata") or {}).get("namespace")
            if declared and namespace and declared != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
            if not kind.listable:
                return 201, _review(kind, document)
            track = lambda old, new: track_update(old, new, manager, schema, now)  # noqa: E731
            return 201, cluster.create(kind.plural, document, namespace, manage=track)
        if method == "PUT" and name:
            document = decode(request, kind)
            document.setdefault("metadata", {})
            check_name(document, name)
            document["metadata"]["namespace"] = namespace
            track = lambda old, new: track_update(old, new, manager, schema, now, sub)  # noqa: E731
            return 200, cluster.replace(
                kind.plural, document, status_only=sub == "status", manage=track
            )
        if method == "PATCH" and name:
            return self._patch(request, kind, namespace, name, sub, manager, schema, now)
        if method == "DELETE" and name:
            options = (
                loads(request.body)
                if request.body and not request.body.startswith(protobuf.MAGIC)
                else {}
            )
            propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
            if propagation not in (None, "Orphan", "Background", "Foreground"):
                raise ApiError(400, "BadRequest", f"invalid propagationPolicy {propagation!r}")
            return 200, cluster.delete(kind.plural, namespace, name, propagation)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this path")

    def _patch(self, request: Request, kind: Kind, namespace: str, name: str, sub: str,
               manager: str, schema: JSON, now: str) -> tuple[int, JSON]:  # fmt: skip
        media = request.header("content-type").split(";")[0].strip()
        cluster = self.cluster
        status_only = sub == "status"
        if media == "application/apply-patch+yaml":
            if not request.query.get("fieldManager"):
                raise ApiError(
                    400, "BadRequest", "PATCH, fieldManager is required for apply requests"
                )
            config = decode(request, kind)
            if (config.get("kind"), config.get("apiVersion")) != (kind.kind, kind.api_version):
                raise ApiError(400, "BadRequest", "apply patch kind/apiVersion do not match URL")
            check_name(config, name)
            live = cluster.store[kind.plural].get((namespace, name))
            force = request.query.get("force") in ("true", "1")
            try:
                applied = apply(live, config, manager, schema, now, force=force)
            except ApplyConflict as conflict:
                raise conflict_error(kind, name, conflict) from None
            applied["metadata"]["name"] = name
            if live is None:
                return 201, cluster.create(kind.plural, applied, namespace)
            applied["metadata"]["namespace"] = namespace
            return 200, cluster.replace(kind.plural, applied, status_only=status_only)
        current = cluster.get(kind.plural, namespace, name)
        document = loads_any(request.body)
        try:
            if media == "application/json-patch+json":
                patched = json_patch(current, document)
            elif media == "application/merge-patch+json":
                patched = merge_patch(current, document)
            elif media == "application/strategic-merge-patch+json":
                patched = strategic_merge(current, document, schema)
            else:
                raise ApiError(
                    415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml, application/strategic-merge-patch+json "
                    f"({media})",
                )  # fmt: skip
        except PatchError as error:
            raise ApiError(422, "Invalid", str(error)) from error
        patched = checked(request, kind, patched)
        patched.setdefault("metadata", {})
        patched["metadata"]["name"] = name
        patched["metadata"]["namespace"] = namespace
        track = lambda old, new: track_update(old, new, manager, schema, now, sub)  # noqa: E731
        return 200, cluster.replace(kind.plural, patched, status_only=status_only, manage=track)

    def _matcher(self, kind: Kind, namespace: str, query: dict[str, str]) -> Callable[[JSON], bool]:
        labels, fields = query.get("labelSelector"), query.get("fieldSelector")

        def matches(obj: JSON) -> bool:
            meta = obj["metadata"]
            if namespace and meta.get("namespace") != namespace:
                return False
            try:
                return label_selector_matches(
                    labels, meta.get("labels") or {}
                ) and field_selector_matches(fields, kind.field_labels, obj)
            except SelectorError as error:
                raise ApiError(400, "BadRequest", str(error)) from error

        matches({"metadata": {"namespace": namespace}, "kind": kind.kind})  # 400 before anything
        return matches

    def _list(self, kind: Kind, namespace: str, query: dict[str, str]) -> JSON:
        matches = self._matcher(kind, namespace, query)
        items = [obj for obj in self.cluster.items(kind.plural, namespace) if matches(obj)]
        meta: JSON = {"resourceVersion": str(self.cluster.rv)}
        token = query.get("continue")
        if token:
            try:
                start = json.loads(base64.b64decode(token))["start"]
            except (ValueError, KeyError, TypeError) as error:
                raise ApiError(
                    400,
                    "BadRequest",
                    "continue key is not valid: incorrect encoded start resourceVersion "
                    "(version meta.k8s.io/v1)",
                ) from error
            items = [obj for obj in items if _key(obj) > start]
        limit = int(query.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
            state = {"v": "meta.k8s.io/v1", "rv": self.cluster.rv, "start": _key(items[-1])}
            meta["continue"] = base64.b64encode(json.dumps(state).encode()).decode()
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": meta,
            "items": [
                {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for obj in items
            ],
        }


def _key(obj: JSON) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def _review(kind: Kind, document: JSON) -> JSON:
    """A review kind (nothing stored): its status filled in, as the authorizer answers."""
    review = copy.deepcopy(document)
    review.update(apiVersion=kind.api_version, kind=kind.kind)
    review["metadata"] = {"creationTimestamp": None, **(review.get("metadata") or {})}
    kind.defaults(review)
    return review
