"""The Kubernetes steps of a request (shared/kube.py), run with the real client against the sandbox.

Aspects covered:
- Idempotence: ensure namespace, device plugin apply and start job run twice change nothing the
  second time (same uid and resourceVersion); delete job twice is fine; a new plugin image is
  applied in place (configured, same uid).
- Device plugin: applied with the pool's tolerations (spot included) it makes every node of the
  pool report its GPUs allocatable and reads ready; skipped for AKS-managed GPU pools and
  install=never; `auto` skips when another device plugin runs, says which, and its readiness
  is what the status reports; a foreign DaemonSet with our name is refused and left alone.
- Jobs: one runs to succeeded and its log tail parses to the last step, accuracy and GPU; one
  that cannot schedule (more GPUs than a node has, a pool taint it does not tolerate) is reported
  at once as pending-unschedulable with the scheduler's message; failures report
  BackoffLimitExceeded / DeadlineExceeded; a foreign job of the same name is never touched.
- The log tail: capped in bytes and starting at a line; a 50 MB log is tailed within the cap by
  an adapter whose peak memory growth (tracemalloc, in its own process) stays far below 50 MB.
- Errors: 500/429 are transient (with Retry-After), 403 permanent, an API server whose
  certificate the CA did not sign is permanent, an unreachable one transient; Entra and
  local-account tokens both reach the cluster, a wrong one is refused.
- No secret: everything returned for history, errors included, json-dumped holds no token, no
  "Bearer" and no CA PEM.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from sandbox.clock import ManualClock
from sandbox.cloud import ClusterAccess, PoolNodes
from sandbox.kube import KubeSimulator
from sandbox.tls import make_ca
from shared.credentials import ClusterCredentials
from shared.errors import StepError
from shared.job_result import JobResult, parse_job_result
from shared.kube import KubeAdapter, LogTail
from shared.wire import HistoryModel
from tests.builders import contract_request
from tests.conftest import ROOT
from tests.sandbox_fixtures import SANDBOX_TOKEN

CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/"
    "Microsoft.ContainerService/managedClusters/myAKSCluster"
)
SYSTEM_POOL = PoolNodes(pool_name="nodepool1", vm_size="Standard_D4ds_v5", count=1, gpus_per_node=0)
GPU_POOL = PoolNodes(
    pool_name="gpunp",
    vm_size="Standard_NC4as_T4_v3",
    count=2,
    gpus_per_node=1,
    taints=("sku=gpu:NoSchedule",),
)
SPOT_TAINT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
PLUGIN = "gpu-resources/nvidia-device-plugin-daemonset"
Api = Any
"""The client's models make every field Optional; the tests read them untyped, as a script would."""


make_request = partial(contract_request, {"nodePool": {"nodeCount": 2}})
"""The walkthrough's request (2 T4 nodes tainted sku=gpu) with camelCase changes."""


def credentials(access: ClusterAccess, token: str | None = None) -> ClusterCredentials:
    return ClusterCredentials(
        server=access.server,
        ca_pem=Path(access.ca_path).read_bytes(),
        token=access.token if token is None else token,
    )


@pytest.fixture
def access(kube: KubeSimulator) -> ClusterAccess:
    cluster = kube.ensure_cluster(CLUSTER_ID)
    kube.set_pool(CLUSTER_ID, SYSTEM_POOL)
    kube.set_pool(CLUSTER_ID, GPU_POOL)
    return cluster


@pytest.fixture
def adapter(access: ClusterAccess) -> Iterator[KubeAdapter]:
    with KubeAdapter(credentials(access)) as steps:
        yield steps


def advance(clock: ManualClock, kube: KubeSimulator, seconds: float) -> None:
    clock.advance(seconds)
    kube.settle()


def identity(obj: Any) -> tuple[str, str]:
    return obj.metadata.uid, obj.metadata.resource_version


def foreign_plugin(namespace: str, name: str, image: str) -> dict[str, Any]:
    """A device plugin DaemonSet someone else installed (no gpuprov labels)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"name": "their-plugin"}},
            "template": {
                "metadata": {"labels": {"name": "their-plugin"}},
                "spec": {
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "plugin", "image": image}],
                },
            },
        },
    }


def foreign_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"team": "someone-else"}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}],
                }
            }
        },
    }


def plugin_ready(adapter: KubeAdapter, clock: ManualClock, kube: KubeSimulator) -> None:
    """Install the plugin and let the simulated cluster run it (pull, start, register)."""
    request = make_request()
    adapter.install_device_plugin(request)
    advance(clock, kube, 30)
    assert adapter.gpu_status(request, "Standard_NC4as_T4_v3").ready


# --- idempotence -------------------------------------------------------------------------------


def test_ensure_namespace_creates_once_and_labels_only_what_it_created(
    adapter: KubeAdapter, core: Api
) -> None:
    first = adapter.ensure_namespace("gpu-resources")
    created = core.read_namespace("gpu-resources")
    second = adapter.ensure_namespace("gpu-resources")

    assert (first.created, second.created) == (True, False)
    assert identity(core.read_namespace("gpu-resources")) == identity(created)
    assert created.metadata.labels["app.kubernetes.io/managed-by"] == "gpuprov"
    assert adapter.ensure_namespace("default").created is False
    assert "app.kubernetes.io/managed-by" not in core.read_namespace("default").metadata.labels


@pytest.mark.parametrize(
    ("spot", "taints"),
    [
        pytest.param(None, ("sku=gpu:NoSchedule",), id="on-demand"),
        pytest.param({"maxPrice": -1}, ("sku=gpu:NoSchedule", SPOT_TAINT), id="spot"),
    ],
)
def test_device_plugin_applied_twice_makes_the_pools_gpus_allocatable(
    adapter: KubeAdapter,
    kube: KubeSimulator,
    clock: ManualClock,
    apps: Api,
    access: ClusterAccess,
    spot: dict[str, Any] | None,
    taints: tuple[str, ...],
) -> None:
    kube.set_pool(CLUSTER_ID, PoolNodes("gpunp", "Standard_NC4as_T4_v3", 2, 1, taints=taints))
    request = make_request(nodePool={"nodeCount": 2, "spot": spot})

    first = adapter.install_device_plugin(request)
    applied = apps.read_namespaced_daemon_set("nvidia-device-plugin-daemonset", "gpu-resources")
    second = adapter.install_device_plugin(request)
    again = apps.read_namespaced_daemon_set("nvidia-device-plugin-daemonset", "gpu-resources")
    before = adapter.gpu_status(request, "Standard_NC4as_T4_v3")
    advance(clock, kube, 30)
    status = adapter.device_plugin_status(request)
    gpus = adapter.gpu_status(request, "Standard_NC4as_T4_v3")

    assert (first.action, second.action) == ("created", "unchanged")
    assert identity(again) == identity(applied)
    pod_spec = applied.spec.template.spec
    assert pod_spec.containers[0].image == "nvcr.io/nvidia/k8s-device-plugin:v0.18.0"
    assert pod_spec.priority_class_name == "system-node-critical"
    tolerations = {(t.key, t.operator, t.value, t.effect) for t in pod_spec.tolerations}
    assert ("CriticalAddonsOnly", "Exists", None, None) in tolerations
    assert ("sku", "Equal", "gpu", "NoSchedule") in tolerations
    spot_toleration = ("kubernetes.azure.com/scalesetpriority", "Equal", "spot", "NoSchedule")
    assert (spot_toleration in tolerations) == (spot is not None)
    assert applied.metadata.labels["gpuprov/request-id"] == "req-1"
    assert applied.metadata.labels["gpuprov/owner"] == "gpuprov", "the deployment's owner label"
    assert not before.ready
    assert [node.allocatable for node in before.nodes] == [0, 0]
    assert status.ready
    assert (status.pool_nodes, status.pool_nodes_ready, status.daemon_set) == (2, 2, PLUGIN)
    assert gpus.ready
    assert [node.allocatable for node in gpus.nodes] == [1, 1]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param(
            {"nodePool": {"nodeCount": 2, "managedGpu": True}}, "managed", id="managed-gpu"
        ),
        pytest.param({"devicePlugin": {"install": "never"}}, "never", id="install-never"),
    ],
)
def test_device_plugin_is_skipped_when_the_request_says_so(
    adapter: KubeAdapter,
    kube: KubeSimulator,
    clock: ManualClock,
    apps: Api,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    managed = "managedGpu" in overrides.get("nodePool", {})
    kube.set_pool(
        CLUSTER_ID,
        PoolNodes(
            "gpunp", "Standard_NC4as_T4_v3", 2, 1, ("sku=gpu:NoSchedule",), managed_gpu=managed
        ),
    )
    request = make_request(**overrides)

    result = adapter.install_device_plugin(request)
    advance(clock, kube, 30)

    assert result.action == "skipped"
    assert reason in result.reason
    assert apps.list_daemon_set_for_all_namespaces().items == []
    assert adapter.device_plugin_status(request).ready
    assert adapter.gpu_status(request, "Standard_NC4as_T4_v3").ready == managed


def test_a_new_plugin_image_reconfigures_the_daemonset_in_place(
    adapter: KubeAdapter, apps: Api
) -> None:
    first = adapter.install_device_plugin(make_request())
    created = apps.read_namespaced_daemon_set("nvidia-device-plugin-daemonset", "gpu-resources")
    newer = make_request(devicePlugin={"image": "nvcr.io/nvidia/k8s-device-plugin:v0.18.1"})

    second = adapter.install_device_plugin(newer)

    after = apps.read_namespaced_daemon_set("nvidia-device-plugin-daemonset", "gpu-resources")
    assert (first.action, second.action) == ("created", "configured")
    assert after.metadata.uid == created.metadata.uid
    assert after.spec.template.spec.containers[0].image.endswith(":v0.18.1")


def test_auto_skips_when_another_device_plugin_runs_and_always_installs_anyway(
    adapter: KubeAdapter, kube: KubeSimulator, clock: ManualClock, apps: Api
) -> None:
    theirs = foreign_plugin(
        "kube-system", "nvidia-plugin", "nvcr.io/nvidia/k8s-device-plugin:v0.17.0"
    )
    apps.create_namespaced_daemon_set("kube-system", theirs)

    auto = adapter.install_device_plugin(make_request())
    advance(clock, kube, 30)
    theirs_status = adapter.device_plugin_status(make_request())
    always = adapter.install_device_plugin(make_request(devicePlugin={"install": "always"}))

    assert (auto.action, auto.existing) == ("skipped", "kube-system/nvidia-plugin")
    assert "k8s-device-plugin:v0.17.0" in auto.reason
    assert (theirs_status.daemon_set, theirs_status.ready) == ("kube-system/nvidia-plugin", True)
    assert adapter.gpu_status(make_request(), "Standard_NC4as_T4_v3").ready
    assert always.action == "created"


def test_a_foreign_daemonset_with_our_name_is_refused_and_left_alone(
    adapter: KubeAdapter, apps: Api
) -> None:
    adapter.ensure_namespace("gpu-resources")
    theirs = foreign_plugin(
        "gpu-resources", "nvidia-device-plugin-daemonset", "example.com/agent:1"
    )
    apps.create_namespaced_daemon_set("gpu-resources", theirs)
    created = apps.read_namespaced_daemon_set("nvidia-device-plugin-daemonset", "gpu-resources")

    with pytest.raises(StepError) as refused:
        adapter.install_device_plugin(make_request())

    assert (refused.value.kind, refused.value.code) == ("permanent", "NotOwned")
    after = apps.read_namespaced_daemon_set("nvidia-device-plugin-daemonset", "gpu-resources")
    assert identity(after) == identity(created)
    assert after.spec.template.spec.containers[0].image == "example.com/agent:1"


# --- jobs --------------------------------------------------------------------------------------


def test_job_started_twice_runs_once_to_succeeded_and_its_log_parses(
    adapter: KubeAdapter, kube: KubeSimulator, clock: ManualClock, batch: Api
) -> None:
    plugin_ready(adapter, clock, kube)
    request = make_request()

    first = adapter.start_job(request, "Standard_NC4as_T4_v3")
    created = batch.read_namespaced_job("samples-tf-mnist-demo", "default")
    second = adapter.start_job(request, "Standard_NC4as_T4_v3")
    advance(clock, kube, 1)
    pending = adapter.job_status(request)
    advance(clock, kube, 60)
    running = adapter.job_status(request)
    advance(clock, kube, 120)
    done = adapter.job_status(request)
    tail = adapter.job_log_tail(request, 16384)

    assert (first.created, second.created, second.uid) == (True, False, first.uid)
    assert pending.state == "pending"
    assert running.state == "running"
    assert (done.state, done.exit_code) == ("succeeded", 0)
    spec = created.spec.template.spec
    assert spec.containers[0].resources.limits == {"nvidia.com/gpu": "1"}
    assert spec.node_selector == {"kubernetes.azure.com/agentpool": "gpunp"}
    assert created.spec.active_deadline_seconds == 1800
    assert created.spec.backoff_limit == 0
    assert not tail.truncated
    result = parse_job_result(tail.text)
    assert result is not None
    assert (result.step, result.gpu) == (490, "Tesla T4")
    assert f"Accuracy at step 490: {result.accuracy}\n" in tail.text


def test_a_second_start_writes_nothing(
    adapter: KubeAdapter, kube: KubeSimulator, clock: ManualClock, batch: Api
) -> None:
    request = make_request()
    adapter.start_job(request, "Standard_NC4as_T4_v3")
    before = identity(batch.read_namespaced_job("samples-tf-mnist-demo", "default"))

    again = adapter.start_job(request, "Standard_NC4as_T4_v3")

    assert again.created is False
    assert identity(batch.read_namespaced_job("samples-tf-mnist-demo", "default")) == before


@pytest.mark.parametrize(
    ("pool_taints", "job", "expected"),
    [
        pytest.param(
            ("sku=gpu:NoSchedule",),
            {"gpusPerPod": 2},
            "Insufficient nvidia.com/gpu",
            id="too-many-gpus",
        ),
        pytest.param(
            ("sku=gpu:NoSchedule", "dedicated=ml:NoSchedule"),
            {},
            "untolerated taint {dedicated: ml}",
            id="untolerated-taint",
        ),
    ],
)
def test_a_job_that_cannot_schedule_is_reported_at_once(
    adapter: KubeAdapter,
    kube: KubeSimulator,
    clock: ManualClock,
    pool_taints: tuple[str, ...],
    job: dict[str, Any],
    expected: str,
) -> None:
    plugin_ready(adapter, clock, kube)
    kube.set_pool(CLUSTER_ID, PoolNodes("gpunp", "Standard_NC4as_T4_v3", 2, 1, taints=pool_taints))
    request = make_request(job=job)

    adapter.start_job(request, "Standard_NC4as_T4_v3")
    advance(clock, kube, 1)
    status = adapter.job_status(request)

    assert (status.state, status.reason) == ("pending-unschedulable", "Unschedulable")
    assert status.message.startswith("0/3 nodes are available")
    assert expected in status.message


@pytest.mark.parametrize(
    ("timeout_minutes", "reason", "exit_code"),
    [
        pytest.param(30, "BackoffLimitExceeded", 1, id="backoff-limit"),
        pytest.param(1, "DeadlineExceeded", None, id="deadline"),
    ],
)
def test_a_failed_job_reports_its_reason(
    adapter: KubeAdapter,
    kube: KubeSimulator,
    clock: ManualClock,
    timeout_minutes: int,
    reason: str,
    exit_code: int | None,
) -> None:
    plugin_ready(adapter, clock, kube)
    if reason == "BackoffLimitExceeded":
        kube.fail_next_job("samples-tf-mnist-demo")
    request = make_request(job={"timeoutMinutes": timeout_minutes})

    adapter.start_job(request, "Standard_NC4as_T4_v3")
    advance(clock, kube, 200)
    status = adapter.job_status(request)

    assert (status.state, status.reason) == ("failed", reason)
    assert status.message
    assert status.exit_code == exit_code


def test_a_foreign_job_with_the_same_name_is_never_touched(
    adapter: KubeAdapter, batch: Api
) -> None:
    batch.create_namespaced_job("default", foreign_job("samples-tf-mnist-demo"))
    theirs = batch.read_namespaced_job("samples-tf-mnist-demo", "default")
    request = make_request()

    for step in (
        lambda: adapter.start_job(request, "Standard_NC4as_T4_v3"),
        lambda: adapter.delete_job(request),
    ):
        with pytest.raises(StepError) as refused:
            step()
        assert (refused.value.kind, refused.value.code) == ("permanent", "NotOwned")
    after = batch.read_namespaced_job("samples-tf-mnist-demo", "default")
    assert identity(after) == identity(theirs)


def test_a_job_of_another_deployment_for_the_same_request_id_is_never_touched(
    adapter: KubeAdapter, batch: Api
) -> None:
    """One ownership rule for ARM and Kubernetes: the owner and the request id must both match
    (shared/ownership.py), so a second deployment reusing a request id cannot take a job over."""
    job = foreign_job("samples-tf-mnist-demo")
    job["metadata"]["labels"] = {"gpuprov/request-id": "req-0001", "gpuprov/owner": "other-team"}
    batch.create_namespaced_job("default", job)
    request = make_request()

    with pytest.raises(StepError) as refused:
        adapter.delete_job(request)
    assert (refused.value.kind, refused.value.code) == ("permanent", "NotOwned")
    assert batch.read_namespaced_job("samples-tf-mnist-demo", "default").metadata.labels == {
        "gpuprov/request-id": "req-0001",
        "gpuprov/owner": "other-team",
    }


def test_delete_job_twice_removes_it_and_its_pods(
    adapter: KubeAdapter, kube: KubeSimulator, clock: ManualClock, core: Api
) -> None:
    plugin_ready(adapter, clock, kube)
    request = make_request()
    adapter.start_job(request, "Standard_NC4as_T4_v3")
    advance(clock, kube, 40)
    assert core.list_namespaced_pod(
        "default", label_selector="job-name=samples-tf-mnist-demo"
    ).items

    first = adapter.delete_job(request)
    second = adapter.delete_job(request)
    advance(clock, kube, 1)

    assert (first.deleted, second.deleted) == (True, False)
    assert adapter.job_status(request).state == "not-found"
    assert not core.list_namespaced_pod(
        "default", label_selector="job-name=samples-tf-mnist-demo"
    ).items


# --- the log tail ------------------------------------------------------------------------------


def test_the_log_tail_is_capped_and_starts_at_a_line(
    adapter: KubeAdapter, kube: KubeSimulator, clock: ManualClock
) -> None:
    plugin_ready(adapter, clock, kube)
    request = make_request()
    adapter.start_job(request, "Standard_NC4as_T4_v3")
    advance(clock, kube, 200)

    tail = adapter.job_log_tail(request, 1024)

    assert tail.truncated
    assert tail.bytes_read > 1024
    assert len(tail.text.encode()) <= 1024
    assert tail.text.startswith("Accuracy at step ")
    result = parse_job_result(tail.text)
    assert result is not None
    assert result.step == 490


_TAIL_IN_OWN_PROCESS = """
import json, sys, tracemalloc
from shared.credentials import ClusterCredentials
from shared.kube import KubeAdapter
from shared.request import ProvisionRequest

given = json.load(sys.stdin)
secret = ClusterCredentials(given["server"], given["ca"].encode(), given["token"])
request = ProvisionRequest.model_validate(given["request"])
with KubeAdapter(secret) as adapter:
    adapter.job_status(request)  # warm up: imports, TLS connection
    tracemalloc.start()
    tail = adapter.job_log_tail(request, given["maxBytes"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
print(json.dumps({"tail": tail.model_dump(mode="json"), "peak": peak}))
"""


def test_a_50_mb_log_is_tailed_within_the_cap_in_little_memory(
    adapter: KubeAdapter, kube: KubeSimulator, clock: ManualClock, access: ClusterAccess
) -> None:
    """The adapter runs in its own process so tracemalloc sees its memory, not the server's."""
    plugin_ready(adapter, clock, kube)
    progress = "Epoch 1/1 [" + "=" * (1024 * 1024 - 12) + "]"  # a 1 MiB progress-bar line
    last_steps = ["Accuracy at step 480: 0.9533", "Accuracy at step 490: 0.9494"]
    kube.fail_next_job("samples-tf-mnist-demo", log="\n".join([progress] * 50 + last_steps))
    request = make_request()
    adapter.start_job(request, "Standard_NC4as_T4_v3")
    advance(clock, kube, 200)
    given = {
        "server": access.server,
        "ca": Path(access.ca_path).read_text(),
        "token": access.token,
        "request": request.model_dump(mode="json"),
        "maxBytes": 16384,
    }

    child = subprocess.run(
        [sys.executable, "-c", _TAIL_IN_OWN_PROCESS],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=50,
        check=False,
    )

    assert child.returncode == 0, child.stderr
    answer = json.loads(child.stdout)
    tail = LogTail.model_validate(answer["tail"])
    assert tail.bytes_read > 50 * 1024 * 1024
    assert tail.truncated
    assert len(tail.text.encode()) <= 16384
    assert tail.text == "Accuracy at step 480: 0.9533\nAccuracy at step 490: 0.9494\n"
    assert parse_job_result(tail.text) == JobResult(step=490, accuracy=0.9494)
    print(f"adapter peak memory growth while tailing 50 MB: {answer['peak']} bytes")
    assert answer["peak"] < 2 * 1024 * 1024, f"peak {answer['peak']} bytes"


# --- errors and credentials --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind", "code", "retry_after"),
    [
        pytest.param(500, "transient", "InternalError", None, id="500"),
        pytest.param(429, "transient", "TooManyRequests", 1, id="429"),
        pytest.param(403, "permanent", "Forbidden", None, id="403"),
    ],
)
def test_api_failures_are_classified_and_a_retry_creates_once(
    adapter: KubeAdapter,
    kube: KubeSimulator,
    batch: Api,
    fault: int,
    kind: str,
    code: str,
    retry_after: int | None,
) -> None:
    kube.inject_fault("POST", r"/jobs$", fault=fault)
    request = make_request()

    with pytest.raises(StepError) as failed:
        adapter.start_job(request, "Standard_NC4as_T4_v3")
    retried = adapter.start_job(request, "Standard_NC4as_T4_v3")

    assert (failed.value.kind, failed.value.code, failed.value.retry_after) == (
        kind,
        code,
        retry_after,
    )
    assert retried.created
    assert len(batch.list_namespaced_job("default").items) == 1


def test_entra_and_local_account_tokens_reach_the_cluster_and_a_wrong_one_is_refused(
    kube: KubeSimulator, access: ClusterAccess
) -> None:
    entra = kube.ensure_cluster(CLUSTER_ID + "-entra", entra_id=True)

    with KubeAdapter(credentials(entra, SANDBOX_TOKEN)) as entra_steps:
        assert entra_steps.ensure_namespace("default").name == "default"
    with KubeAdapter(credentials(access)) as local_steps:
        assert local_steps.ensure_namespace("default").name == "default"
    with (
        KubeAdapter(credentials(access, "not-the-token")) as wrong,
        pytest.raises(StepError) as refused,
    ):
        wrong.ensure_namespace("default")
    assert (refused.value.kind, refused.value.code) == ("permanent", "Unauthorized")


def test_a_server_that_cannot_be_trusted_or_reached_is_classified(
    access: ClusterAccess, tmp_path: Path
) -> None:
    other_ca = make_ca(tmp_path / "other-ca").ca_path.read_bytes()
    untrusted = ClusterCredentials(access.server, other_ca, access.token)
    closed = ClusterCredentials("https://127.0.0.1:9", Path(access.ca_path).read_bytes(), "x")

    with KubeAdapter(untrusted) as steps, pytest.raises(StepError) as refused:
        steps.ensure_namespace("default")
    with KubeAdapter(closed) as steps, pytest.raises(StepError) as unreachable:
        steps.ensure_namespace("default")

    assert (refused.value.kind, refused.value.code) == ("permanent", "TlsVerificationFailed")
    assert (unreachable.value.kind, unreachable.value.code) == ("transient", "ConnectionFailed")


def test_nothing_returned_for_history_holds_a_secret(
    adapter: KubeAdapter, kube: KubeSimulator, clock: ManualClock, batch: Api, access: ClusterAccess
) -> None:
    request = make_request()
    returned: list[HistoryModel] = [
        adapter.ensure_namespace("gpu-resources"),
        adapter.install_device_plugin(request),
        adapter.device_plugin_status(request),
        adapter.gpu_status(request, "Standard_NC4as_T4_v3"),
    ]
    advance(clock, kube, 30)
    returned += [
        adapter.device_plugin_status(request),
        adapter.gpu_status(request, "Standard_NC4as_T4_v3"),
        adapter.start_job(request, "Standard_NC4as_T4_v3"),
        adapter.job_status(request),
    ]
    advance(clock, kube, 200)
    tail = adapter.job_log_tail(request, 16384)
    returned += [
        adapter.job_status(request),
        tail,
        adapter.delete_job(request),
        adapter.delete_job(request),
    ]
    batch.create_namespaced_job("default", foreign_job("samples-tf-mnist-demo"))
    with pytest.raises(StepError) as refused:
        adapter.start_job(request, "Standard_NC4as_T4_v3")
    errors = [refused.value.to_wire()]
    with (
        KubeAdapter(credentials(access, access.token + "x")) as wrong,
        pytest.raises(StepError) as unauthorized,
    ):
        wrong.ensure_namespace("default")
    errors.append(unauthorized.value.to_wire())

    pem = Path(access.ca_path).read_text()
    pem_body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    dumped = [json.dumps(value.model_dump(mode="json")) for value in [*returned, *errors]]
    dumped += [repr(adapter), str(unauthorized.value)]
    for text in dumped:
        assert access.token not in text
        assert "Bearer" not in text
        assert "BEGIN CERTIFICATE" not in text
        assert not any(line in text for line in pem_body)
    assert parse_job_result(tail.text) is not None  # the check above looked at a real log


# --- a broken driver, seen per node (verify-gpus) ------------------------------------------------


@pytest.fixture
def broken_access(kube: KubeSimulator) -> ClusterAccess:
    """The GPU pool's first node has a driver/library mismatch (the `plugin-crashloop` drill,
    Azure/AKS#5869): NVML cannot initialise there."""
    kube.inject_gpu_fault("plugin-crashloop")
    cluster = kube.ensure_cluster(CLUSTER_ID)
    kube.set_pool(CLUSTER_ID, SYSTEM_POOL)
    kube.set_pool(CLUSTER_ID, GPU_POOL)
    return cluster


def test_the_products_plugin_crashloops_on_a_broken_driver_and_the_node_is_named(
    broken_access: ClusterAccess, clock: ManualClock, kube: KubeSimulator
) -> None:
    """FAIL_ON_INIT_ERROR=true (the product's manifest): the plugin exits, the kubelet restarts
    it with back-off; the install wait settles and verify-gpus names the node."""
    request = make_request()
    with KubeAdapter(credentials(broken_access)) as adapter:
        adapter.install_device_plugin(request)
        advance(clock, kube, 60)
        plugin = adapter.device_plugin_status(request)
        gpus = adapter.gpu_status(request, "Standard_NC4as_T4_v3")

    assert not plugin.ready
    assert plugin.settled, "a crashlooping plugin ends the install wait"
    [broken] = plugin.crashlooping
    by_name = {node.name: node for node in gpus.nodes}
    assert by_name[broken].state == "failed"
    assert by_name[broken].code == "DevicePluginCrashLoop"
    assert broken in by_name[broken].cause
    crashing = by_name[broken].plugin
    assert crashing is not None
    assert crashing.restarts >= 1
    assert "Driver/library version mismatch" in by_name[broken].cause
    assert [node.state for name, node in by_name.items() if name != broken] == ["ready"]
    assert gpus.failed
    assert not gpus.ready


def test_a_plugin_that_blocks_on_init_errors_is_caught_by_its_log(
    broken_access: ClusterAccess, apps: Api, clock: ManualClock, kube: KubeSimulator
) -> None:
    """FAIL_ON_INIT_ERROR=false (upstream's static manifest): the plugin runs, ready, and
    advertises nothing; verify-gpus reads its log and names the node."""
    blocking = foreign_plugin(
        "kube-system", "nvidia-device-plugin", "nvcr.io/nvidia/k8s-device-plugin:v0.18.0"
    )
    container = blocking["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}]
    apps.create_namespaced_daemon_set("kube-system", blocking)
    advance(clock, kube, 60)
    with KubeAdapter(credentials(broken_access)) as adapter:
        gpus = adapter.gpu_status(make_request(), "Standard_NC4as_T4_v3")

    [broken] = [node for node in gpus.nodes if node.state != "ready"]
    assert broken.state == "failed"
    assert broken.code == "DevicePluginInitFailed"
    assert broken.plugin is not None
    assert broken.plugin.ready, "Running and ready, yet no GPUs"
    assert broken.allocatable == 0
    assert broken.name in broken.cause
    assert "Failed to initialize NVML: Driver/library version mismatch" in broken.cause


# --- the smoke workload ------------------------------------------------------------------------


def _proven_nodes(adapter: KubeAdapter, request: Any) -> list[str]:
    return [node.name for node in adapter.gpu_status(request, "Standard_NC4as_T4_v3").nodes]


def _smoke_until_done(
    adapter: KubeAdapter, clock: ManualClock, kube: KubeSimulator, request: Any, nodes: list[str]
) -> Any:
    """Looks every 15 s, each given the last one's answer (as the waiting orchestration does)."""
    looked = None
    for _ in range(40):
        looked = adapter.smoke_status(request, "Standard_NC4as_T4_v3", nodes, looked)
        if looked.done:
            return looked
        advance(clock, kube, 15)
    raise AssertionError(f"the smoke workload did not end: {looked}")


def test_smoke_looks_prove_every_node_reading_each_finished_pods_log_once(
    adapter: KubeAdapter, kube: KubeSimulator, clock: ManualClock
) -> None:
    plugin_ready(adapter, clock, kube)
    request = make_request()
    nodes = _proven_nodes(adapter, request)
    kube.clear_requests()

    smoke = _smoke_until_done(adapter, clock, kube, request, nodes)

    assert (smoke.done, smoke.failed) == (True, False)
    assert [node.state for node in smoke.nodes] == ["passed", "passed"]
    assert all([r.tool for r in node.results] == ["nvidia-smi", "vectoradd"]
               for node in smoke.nodes)  # fmt: skip
    logs = [r.path.split("?")[0] for r in kube.requests if r.path.split("?")[0].endswith("/log")]
    assert len(logs) == 4, logs  # two tools on two nodes, each log read once
    assert len(set(logs)) == 4, logs
    assert not [r for r in kube.requests if r.path.split("?")[0] == "/api/v1/nodes"], (
        "the nodes come from the GPU checks, not another read"
    )


def test_smoke_pods_create_the_jobs_namespace_when_it_is_missing(
    adapter: KubeAdapter, kube: KubeSimulator, clock: ManualClock, core: Api
) -> None:
    """A create in a missing namespace is 404 (the NamespaceLifecycle admission plugin); the
    first smoke pod creates the request's namespace, labelled as ours, then itself."""
    plugin_ready(adapter, clock, kube)
    request = contract_request({"nodePool": {"nodeCount": 2}, "job": {"namespace": "ml-proof"}})

    smoke = _smoke_until_done(adapter, clock, kube, request, _proven_nodes(adapter, request))

    assert (smoke.done, smoke.failed) == (True, False)
    labels = core.read_namespace("ml-proof").metadata.labels
    assert labels["app.kubernetes.io/managed-by"] == "gpuprov"
    assert adapter.delete_smoke(request) == 4
    assert core.list_namespaced_pod("ml-proof").items == []
