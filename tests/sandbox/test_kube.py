"""The Kubernetes API simulator, driven by the real `kubernetes` client over HTTPS.

Aspects covered:
- API machinery: namespaces (create/get/404/409), server-side apply of a DaemonSet (create, then a
  changed image; fieldManager required), strategic merge patch of tolerations, JSON merge patch
  then a stale replace (409 Conflict), label and field selectors (400 for unsupported fields),
  dryRun=All, delete with propagation (Foreground removes a job's pods, Orphan keeps them),
  bearer auth (401 for a wrong or missing token; an Entra cluster reached through a kubeconfig
  whose server is the cluster's own URL, without a path prefix); defaults and canonical
  quantities as the API server stores them.
- Watches: ADDED/MODIFIED of a job's pod, a disconnect resumed from the last resourceVersion
  without gaps or repeats, 410 Gone for a compacted resourceVersion and for an injected fault,
  timeoutSeconds ending a quiet watch.
- Faults: injected 500/403 answer before any state changes.
- The cluster: GPU nodes (names, labels, taints) advertise `nvidia.com/gpu` only once a device
  plugin that tolerates their taint runs, a plugin that does not tolerate it leaves them at 0,
  managed GPU pools have GPUs at once; jobs run to Succeeded with the MNIST log (waiting → 400,
  tailLines, limitBytes); unschedulable job pods carry the scheduler's message; GPUs in use are
  not given twice; failures retry up to backoffLimit; activeDeadlineSeconds ends in
  DeadlineExceeded; ttlSecondsAfterFinished deletes the job; removing a pool removes its nodes
  and their pods; a job's and its pod's Events; each node's Lease.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from sandbox import tls
from sandbox.clock import ManualClock
from sandbox.cloud import ClusterAccess, PoolNodes
from sandbox.kube import KubeSimulator, KubeTimings
from tests.sandbox_fixtures import kube_client

CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.ContainerService/managedClusters/gpu-cluster"
)
PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.18.0"
SKU_GPU = {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
T4_POOL = PoolNodes(
    pool_name="gpunp",
    vm_size="Standard_NC4as_T4_v3",
    count=2,
    gpus_per_node=1,
    taints=("sku=gpu:NoSchedule",),
    labels={"accelerator": "nvidia"},
)
CPU_POOL = PoolNodes(pool_name="nodepool1", vm_size="Standard_D4s_v3", count=1, gpus_per_node=0)
TIMINGS = KubeTimings()

Api = Any
"""The client's models make every field Optional; the tests read them untyped, as a script would."""
new_watch: Any = watch.Watch
client_from_kubeconfig: Any = config.new_client_from_config_dict


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tls.TestCA:
    return tls.make_ca(tmp_path_factory.mktemp("kube-ca"))


@pytest.fixture
def sim(clock: ManualClock, ca: tls.TestCA) -> Iterator[KubeSimulator]:
    with KubeSimulator(clock, ca) as simulator:
        yield simulator


@pytest.fixture
def access(sim: KubeSimulator) -> ClusterAccess:
    return sim.ensure_cluster(CLUSTER_ID)


def plugin_daemonset(tolerations: list[dict[str, str]], image: str = PLUGIN_IMAGE) -> dict:
    """The AKS documentation's NVIDIA device plugin DaemonSet."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "nvidia-device-plugin-daemonset", "namespace": "gpu-resources"},
        "spec": {
            "selector": {"matchLabels": {"name": "nvidia-device-plugin-ds"}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"name": "nvidia-device-plugin-ds"}},
                "spec": {
                    "tolerations": tolerations,
                    "priorityClassName": "system-node-critical",
                    "containers": [
                        {
                            "image": image,
                            "name": "nvidia-device-plugin-ctr",
                            "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                            "volumeMounts": [
                                {"name": "device-plugin", "mountPath": "/var/lib/kubelet/dp"}
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "device-plugin", "hostPath": {"path": "/var/lib/kubelet/dp"}}
                    ],
                },
            },
        },
    }


def mnist_job(
    name: str = "samples-tf-mnist-demo",
    gpus: int = 1,
    tolerations: list[dict[str, str]] | None = None,
    **spec: Any,
) -> dict:
    """The seed's MNIST job, with the taint toleration today's AKS pools need."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            **spec,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": "mcr.microsoft.com/azuredocs/samples-tf-mnist-demo:gpu",
                            "args": ["--max_steps", "500"],
                            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                        }
                    ],
                    "restartPolicy": "OnFailure",
                    "tolerations": [SKU_GPU] if tolerations is None else tolerations,
                },
            },
        },
    }


def create_namespace(core: Api, name: str) -> None:
    core.create_namespace({"metadata": {"name": name}})


def gpu_allocatable(core: Api) -> dict[str, str]:
    return {
        node.metadata.name: (node.status.allocatable or {}).get("nvidia.com/gpu", "0")
        for node in core.list_node(label_selector="kubernetes.azure.com/agentpool=gpunp").items
    }


@pytest.fixture
def gpu_cluster(sim: KubeSimulator, clock: ManualClock, core: Api, apps: Api) -> None:
    """Two T4 nodes with a running device plugin: jobs can get a GPU."""
    sim.set_pool(CLUSTER_ID, T4_POOL)
    create_namespace(core, "gpu-resources")
    apps.create_namespaced_daemon_set("gpu-resources", plugin_daemonset([SKU_GPU]))
    clock.advance(TIMINGS.daemon_pod_start + TIMINGS.device_plugin_register)


def reason(error: ApiException) -> str:
    """The `reason` of the Status object the server answered with."""
    return str(json.loads(error.body or "{}")["reason"])


def reason_message(error: ApiException) -> str:
    return str(json.loads(error.body or "{}")["message"])


def job_pods(core: Api, job: str) -> list[Any]:
    return core.list_namespaced_pod("default", label_selector=f"job-name={job}").items


def condition(job: Any, kind: str) -> Any:
    return next((c for c in job.status.conditions or [] if c.type == kind), None)


# --- API machinery ---------------------------------------------------------------------------


def test_namespace_is_created_read_back_and_a_duplicate_conflicts(core: Api) -> None:
    create_namespace(core, "gpu-resources")

    namespace = core.read_namespace("gpu-resources")
    assert namespace.status.phase == "Active"
    assert namespace.metadata.uid
    assert int(namespace.metadata.resource_version) > 0
    with pytest.raises(ApiException) as duplicate:
        create_namespace(core, "gpu-resources")
    assert duplicate.value.status == 409
    assert reason(duplicate.value) == "AlreadyExists"
    with pytest.raises(ApiException) as missing:
        core.read_namespace("nope")
    assert missing.value.status == 404


def test_server_side_apply_creates_a_daemonset_then_changes_its_image(core: Api, apps: Api) -> None:
    create_namespace(core, "gpu-resources")

    def apply(image: str) -> Any:
        return apps.patch_namespaced_daemon_set(
            "nvidia-device-plugin-daemonset",
            "gpu-resources",
            plugin_daemonset([SKU_GPU], image),
            field_manager="gpuprov",
            force=True,
            _content_type="application/apply-patch+yaml",
        )

    created = apply(PLUGIN_IMAGE)
    updated = apply("nvcr.io/nvidia/k8s-device-plugin:v0.18.1")

    assert created.metadata.generation == 1
    assert updated.metadata.generation == 2
    assert updated.metadata.uid == created.metadata.uid
    stored = apps.read_namespaced_daemon_set("nvidia-device-plugin-daemonset", "gpu-resources")
    assert stored.spec.template.spec.containers[0].image.endswith(":v0.18.1")
    assert stored.spec.template.spec.tolerations[0].key == "sku"


def test_apply_without_field_manager_is_rejected(core: Api, apps: Api) -> None:
    create_namespace(core, "gpu-resources")
    with pytest.raises(ApiException) as rejected:
        apps.patch_namespaced_daemon_set(
            "nvidia-device-plugin-daemonset",
            "gpu-resources",
            plugin_daemonset([SKU_GPU]),
            _content_type="application/apply-patch+yaml",
        )
    assert rejected.value.status == 400


def test_strategic_merge_patch_replaces_tolerations_and_merges_containers_by_name(
    core: Api, apps: Api
) -> None:
    """PodSpec.tolerations has no x-kubernetes-patch-strategy (list-type atomic): a strategic
    merge patch replaces the list; containers (patch-merge-key name) merge item by item."""
    create_namespace(core, "gpu-resources")
    apps.create_namespaced_daemon_set("gpu-resources", plugin_daemonset([SKU_GPU]))
    extra = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

    patched = apps.patch_namespaced_daemon_set(
        "nvidia-device-plugin-daemonset",
        "gpu-resources",
        {
            "spec": {
                "template": {
                    "spec": {
                        "tolerations": [extra],
                        "containers": [{"name": "nvidia-device-plugin-ctr", "args": ["--x"]}],
                    }
                }
            }
        },
    )

    assert [t.key for t in patched.spec.template.spec.tolerations] == ["nvidia.com/gpu"]
    container = patched.spec.template.spec.containers[0]
    assert (container.image, container.args) == (PLUGIN_IMAGE, ["--x"])


def test_merge_patch_then_a_stale_replace_conflicts(core: Api) -> None:
    create_namespace(core, "team-a")
    stale = core.read_namespace("team-a")

    patched = core.patch_namespace(
        "team-a",
        {"metadata": {"labels": {"owner": "gpuprov"}}},
        _content_type="application/merge-patch+json",
    )

    assert patched.metadata.labels["owner"] == "gpuprov"
    assert patched.metadata.labels["kubernetes.io/metadata.name"] == "team-a"
    assert int(patched.metadata.resource_version) > int(stale.metadata.resource_version)
    stale.metadata.labels["owner"] = "someone-else"
    with pytest.raises(ApiException) as conflict:
        core.replace_namespace("team-a", stale)
    assert conflict.value.status == 409
    assert reason(conflict.value) == "Conflict"
    assert core.read_namespace("team-a").metadata.labels["owner"] == "gpuprov"


def test_label_and_field_selectors_filter_lists(
    sim: KubeSimulator, clock: ManualClock, core: Api
) -> None:
    sim.set_pool(CLUSTER_ID, T4_POOL)
    sim.set_pool(CLUSTER_ID, CPU_POOL)
    for name, labels in (("a", {"app": "x", "tier": "gpu"}), ("b", {"app": "y"})):
        core.create_namespaced_pod(
            "default",
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        )
    clock.advance(TIMINGS.pod_start)

    def names(**selectors: str) -> list[str]:
        return sorted(
            p.metadata.name for p in core.list_namespaced_pod("default", **selectors).items
        )

    assert names(label_selector="app=x") == ["a"]
    assert names(label_selector="app!=x") == ["b"]
    assert names(label_selector="app in (x, y),tier") == ["a"]
    assert names(label_selector="app notin (x)") == ["b"]
    assert names(label_selector="!tier") == ["b"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="status.phase=Running") == ["a", "b"]
    cpu_node = core.list_node(label_selector="kubernetes.azure.com/agentpool=nodepool1").items[0]
    assert names(field_selector=f"spec.nodeName={cpu_node.metadata.name}") == ["a", "b"]
    gpu_nodes = core.list_node(
        label_selector="node.kubernetes.io/instance-type=Standard_NC4as_T4_v3"
    )
    assert len(gpu_nodes.items) == 2
    with pytest.raises(ApiException) as unsupported:
        core.list_namespaced_pod("default", field_selector="spec.image=busybox")
    assert unsupported.value.status == 400


@pytest.mark.parametrize(
    ("policy", "pods_left"),
    [pytest.param("Foreground", 0, id="foreground"), pytest.param("Orphan", 1, id="orphan")],
)
@pytest.mark.usefixtures("gpu_cluster")
def test_deleting_a_job_handles_its_pods_by_propagation_policy(
    core: Api, batch: Api, policy: str, pods_left: int
) -> None:
    batch.create_namespaced_job("default", mnist_job())
    assert len(job_pods(core, "samples-tf-mnist-demo")) == 1

    batch.delete_namespaced_job("samples-tf-mnist-demo", "default", propagation_policy=policy)

    assert batch.list_namespaced_job("default").items == []
    assert len(job_pods(core, "samples-tf-mnist-demo")) == pods_left


def test_wrong_or_missing_token_is_unauthorized(access: ClusterAccess) -> None:
    for token in ("wrong", ""):
        with kube_client(access, token) as api, pytest.raises(ApiException) as denied:
            client.CoreV1Api(api).list_namespace()
        assert denied.value.status == 401
        assert reason(denied.value) == "Unauthorized"


def test_entra_cluster_accepts_the_entra_token_from_a_kubeconfig(sim: KubeSimulator) -> None:
    access = sim.ensure_cluster(CLUSTER_ID + "-entra", entra_id=True)
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {"server": access.server, "certificate-authority": access.ca_path},
            }
        ],
        "users": [{"name": "u", "user": {"token": "sandbox-token"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }

    assert access.token == ""
    assert urlsplit(access.server).path == ""  # one server per cluster, as AKS: no prefix
    with client_from_kubeconfig(kubeconfig) as api:
        entra_core: Api = client.CoreV1Api(api)
        names = [n.metadata.name for n in entra_core.list_namespace().items]
    assert "default" in names


@pytest.mark.parametrize("status", [pytest.param(500, id="500"), pytest.param(403, id="403")])
def test_injected_fault_answers_before_any_state_change(
    sim: KubeSimulator, core: Api, status: int
) -> None:
    sim.inject_fault("POST", r"^/api/v1/namespaces$", count=1, fault=status)

    with pytest.raises(ApiException) as failed:
        create_namespace(core, "gpu-resources")

    assert failed.value.status == status
    with pytest.raises(ApiException) as missing:
        core.read_namespace("gpu-resources")
    assert missing.value.status == 404
    create_namespace(core, "gpu-resources")
    assert core.read_namespace("gpu-resources").metadata.name == "gpu-resources"


# --- GPU nodes and the device plugin ---------------------------------------------------------


def test_gpu_nodes_advertise_gpus_only_once_a_tolerating_plugin_runs(
    sim: KubeSimulator, clock: ManualClock, core: Api, apps: Api
) -> None:
    sim.set_pool(CLUSTER_ID, T4_POOL)
    nodes = core.list_node().items
    assert [n.metadata.name for n in nodes] == [
        n.metadata.name
        for n in nodes
        if re.fullmatch(r"aks-gpunp-\d{8}-vmss00000[01]", n.metadata.name)
    ]
    node = nodes[0]
    assert node.metadata.labels["kubernetes.azure.com/agentpool"] == "gpunp"
    assert node.metadata.labels["accelerator"] == "nvidia"
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [("sku", "gpu", "NoSchedule")]
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    assert gpu_allocatable(core) == {n.metadata.name: "0" for n in nodes}

    create_namespace(core, "gpu-resources")
    apps.create_namespaced_daemon_set("gpu-resources", plugin_daemonset([SKU_GPU]))
    clock.advance(TIMINGS.daemon_pod_start)
    assert set(gpu_allocatable(core).values()) == {"0"}, "not before the plugin registers"
    clock.advance(TIMINGS.device_plugin_register)

    assert set(gpu_allocatable(core).values()) == {"1"}
    status = apps.read_namespaced_daemon_set_status(
        "nvidia-device-plugin-daemonset", "gpu-resources"
    ).status
    assert (status.desired_number_scheduled, status.number_ready, status.number_available) == (
        2,
        2,
        2,
    )
    plugin_pods = core.list_namespaced_pod("gpu-resources").items
    assert all(p.metadata.name.startswith("nvidia-device-plugin-daemonset-") for p in plugin_pods)
    log = core.read_namespaced_pod_log(plugin_pods[0].metadata.name, "gpu-resources")
    assert "Registered device plugin for 'nvidia.com/gpu'" in log


def test_plugin_that_does_not_tolerate_the_taint_leaves_gpus_at_zero(
    sim: KubeSimulator, clock: ManualClock, core: Api, apps: Api
) -> None:
    sim.set_pool(CLUSTER_ID, T4_POOL)
    create_namespace(core, "gpu-resources")
    upstream = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    apps.create_namespaced_daemon_set("gpu-resources", plugin_daemonset([upstream]))

    clock.advance(600)

    assert set(gpu_allocatable(core).values()) == {"0"}
    status = apps.read_namespaced_daemon_set("nvidia-device-plugin-daemonset", "gpu-resources")
    assert status.status.desired_number_scheduled == 0
    assert core.list_namespaced_pod("gpu-resources").items == []


def test_managed_gpu_pool_has_gpus_at_once(sim: KubeSimulator, core: Api) -> None:
    sim.set_pool(
        CLUSTER_ID,
        PoolNodes(
            pool_name="gpunp",
            vm_size="Standard_NC24ads_A100_v4",
            count=1,
            gpus_per_node=1,
            managed_gpu=True,
        ),
    )
    assert set(gpu_allocatable(core).values()) == {"1"}


@pytest.mark.usefixtures("gpu_cluster")
def test_remove_pool_removes_its_nodes_and_their_pods(sim: KubeSimulator, core: Api) -> None:
    sim.set_pool(CLUSTER_ID, CPU_POOL)

    sim.remove_pool(CLUSTER_ID, "gpunp")

    nodes = {n.metadata.name: n.metadata.labels["agentpool"] for n in core.list_node().items}
    assert set(nodes.values()) == {"nodepool1"}
    plugin_pods = core.list_namespaced_pod("gpu-resources").items
    assert [p.spec.node_name for p in plugin_pods] == list(nodes), "only the CPU node's is left"


# --- jobs ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("gpu_cluster")
def test_job_runs_to_success_and_logs_the_training(
    clock: ManualClock, core: Api, batch: Api
) -> None:
    batch.create_namespaced_job("default", mnist_job())
    [pod] = job_pods(core, "samples-tf-mnist-demo")
    assert pod.spec.node_name.startswith("aks-gpunp-")
    assert pod.metadata.owner_references[0].kind == "Job"
    assert pod.status.phase == "Pending"

    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log(pod.metadata.name, "default")
    assert waiting.value.status == 400
    assert "is waiting to start: ContainerCreating" in reason_message(waiting.value)

    clock.advance(TIMINGS.pod_start)
    assert job_pods(core, "samples-tf-mnist-demo")[0].status.phase == "Running"
    assert batch.read_namespaced_job("samples-tf-mnist-demo", "default").status.active == 1
    clock.advance(TIMINGS.job_run)

    job = batch.read_namespaced_job_status("samples-tf-mnist-demo", "default")
    assert job.status.succeeded == 1
    assert condition(job, "Complete").status == "True"
    assert job.status.completion_time is not None
    [pod] = job_pods(core, "samples-tf-mnist-demo")
    assert pod.status.phase == "Succeeded"
    log = core.read_namespaced_pod_log(pod.metadata.name, "default")
    assert "name: Tesla T4" in log
    steps = re.findall(r"Accuracy at step (\d+): (0\.\d+)", log)
    assert [int(s) for s, _ in steps] == list(range(0, 500, 10))
    assert float(steps[-1][1]) > 0.93 > float(steps[0][1])
    tail = core.read_namespaced_pod_log(pod.metadata.name, "default", tail_lines=2)
    assert tail.splitlines() == log.splitlines()[-2:]
    assert f"Accuracy at step 490: {steps[-1][1]}" in tail
    assert len(core.read_namespaced_pod_log(pod.metadata.name, "default", limit_bytes=40)) == 40


@pytest.mark.parametrize(
    ("job", "message"),
    [
        pytest.param(
            mnist_job(tolerations=[]),
            "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, "
            "2 node(s) had untolerated taint {sku: gpu}.",
            id="no-toleration",
        ),
        pytest.param(
            mnist_job(gpus=4),
            "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            id="too-many-gpus",
        ),
    ],
)
@pytest.mark.usefixtures("gpu_cluster")
def test_job_pod_that_fits_no_node_is_unschedulable_with_the_scheduler_message(
    sim: KubeSimulator, clock: ManualClock, core: Api, batch: Api, job: dict, message: str
) -> None:
    sim.set_pool(CLUSTER_ID, CPU_POOL)

    batch.create_namespaced_job("default", job)
    clock.advance(600)

    [pod] = job_pods(core, "samples-tf-mnist-demo")
    assert pod.status.phase == "Pending"
    [scheduled] = pod.status.conditions
    assert (scheduled.type, scheduled.status, scheduled.reason) == (
        "PodScheduled",
        "False",
        "Unschedulable",
    )
    assert scheduled.message.startswith(message)


@pytest.mark.usefixtures("gpu_cluster")
def test_gpus_in_use_are_not_given_to_a_second_job(
    clock: ManualClock, core: Api, batch: Api
) -> None:
    for name in ("one", "two", "three"):
        batch.create_namespaced_job("default", mnist_job(name))

    phases = {name: job_pods(core, name)[0] for name in ("one", "two", "three")}

    assert phases["one"].spec.node_name != phases["two"].spec.node_name
    assert phases["three"].spec.node_name is None
    clock.advance(TIMINGS.pod_start + TIMINGS.job_run)
    assert job_pods(core, "three")[0].spec.node_name is not None


@pytest.mark.usefixtures("gpu_cluster")
def test_failed_job_retries_until_the_backoff_limit(
    sim: KubeSimulator, clock: ManualClock, core: Api, batch: Api
) -> None:
    sim.fail_next_job("samples-tf-mnist-demo", exit_code=137, count=5)
    batch.create_namespaced_job("default", mnist_job(backoffLimit=1))

    clock.advance(TIMINGS.pod_start + TIMINGS.job_run)
    job = batch.read_namespaced_job("samples-tf-mnist-demo", "default")
    assert (job.status.failed, condition(job, "Failed")) == (1, None)
    clock.advance(TIMINGS.backoff + TIMINGS.pod_start + TIMINGS.job_run)

    job = batch.read_namespaced_job("samples-tf-mnist-demo", "default")
    assert job.status.failed == 2
    assert condition(job, "Failed").reason == "BackoffLimitExceeded"
    pods = job_pods(core, "samples-tf-mnist-demo")
    assert [p.status.phase for p in pods] == ["Failed", "Failed"]
    terminated = pods[0].status.container_statuses[0].state.terminated
    assert terminated.exit_code == 137
    log = core.read_namespaced_pod_log(pods[0].metadata.name, "default")
    assert "RuntimeError" in log


@pytest.mark.usefixtures("gpu_cluster")
def test_finished_job_is_deleted_after_its_ttl(clock: ManualClock, core: Api, batch: Api) -> None:
    batch.create_namespaced_job("default", mnist_job(ttlSecondsAfterFinished=300))

    clock.advance(TIMINGS.pod_start + TIMINGS.job_run)
    assert batch.read_namespaced_job("samples-tf-mnist-demo", "default").status.succeeded == 1
    clock.advance(300)

    assert batch.list_namespaced_job("default").items == []
    assert job_pods(core, "samples-tf-mnist-demo") == []


def test_dry_run_create_validates_without_keeping_anything(batch: Api) -> None:
    answered = batch.create_namespaced_job("default", mnist_job(), dry_run="All")

    assert answered.metadata.name == "samples-tf-mnist-demo"
    assert batch.list_namespaced_job("default").items == []
    invalid = mnist_job()
    invalid["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(ApiException) as rejected:
        batch.create_namespaced_job("default", invalid, dry_run="All")
    assert rejected.value.status == 422


@pytest.mark.usefixtures("gpu_cluster")
def test_active_deadline_ends_the_job_with_deadline_exceeded(
    clock: ManualClock, core: Api, batch: Api
) -> None:
    batch.create_namespaced_job("default", mnist_job(activeDeadlineSeconds=60))

    clock.advance(61)

    job = batch.read_namespaced_job("samples-tf-mnist-demo", "default")
    assert condition(job, "Failed").reason == "DeadlineExceeded"
    assert not job.status.active
    assert job_pods(core, "samples-tf-mnist-demo") == []


# --- watches ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("gpu_cluster")
def test_watch_sees_a_job_pod_added_then_modified(
    clock: ManualClock, core: Api, batch: Api
) -> None:

    def start_job() -> None:
        batch.create_namespaced_job("default", mnist_job())
        clock.advance(TIMINGS.pod_start + TIMINGS.job_run)

    start = core.list_namespaced_pod("default").metadata.resource_version
    starter = threading.Timer(0.3, start_job)
    pod_watch = new_watch()
    seen: list[tuple[str, str]] = []
    starter.start()
    try:
        for event in pod_watch.stream(
            core.list_namespaced_pod, "default", resource_version=start, timeout_seconds=10
        ):
            seen.append((event["type"], event["object"].status.phase))
            if event["object"].status.phase == "Succeeded":
                pod_watch.stop()
    finally:
        starter.join()

    assert seen[0] == ("ADDED", "Pending")
    assert ("MODIFIED", "Running") in seen
    assert seen[-1] == ("MODIFIED", "Succeeded")


@pytest.mark.usefixtures("gpu_cluster")
def test_watch_resumes_after_a_disconnect_from_the_last_resource_version(
    sim: KubeSimulator, clock: ManualClock, core: Api, batch: Api
) -> None:
    start = core.list_namespaced_pod("default").metadata.resource_version
    batch.create_namespaced_job("default", mnist_job())
    clock.advance(TIMINGS.pod_start + TIMINGS.job_run)
    sim.inject_fault("GET", r"/namespaces/default/pods$", count=1, fault="watch-disconnect")

    pod_watch = new_watch()
    versions: list[int] = []
    phases: list[str] = []
    for event in pod_watch.stream(core.list_namespaced_pod, "default", resource_version=start):
        versions.append(int(event["object"].metadata.resource_version))
        phases.append(event["object"].status.phase)
        if event["object"].status.phase == "Succeeded":
            pod_watch.stop()

    assert sim.faults_left() == 0, "the first watch was cut after one event"
    assert versions == sorted(set(versions)), "no event lost or repeated"
    assert phases[0] == "Pending"
    assert phases[-2:] == ["Running", "Succeeded"]


@pytest.mark.parametrize(
    "how", [pytest.param("compacted", id="compacted"), pytest.param("fault", id="fault")]
)
def test_watch_from_a_too_old_resource_version_is_gone(
    sim: KubeSimulator, core: Api, how: str
) -> None:
    start = core.list_namespace().metadata.resource_version
    create_namespace(core, "gpu-resources")
    if how == "compacted":
        sim.compact(CLUSTER_ID)
    else:
        sim.inject_fault("GET", r"/namespaces$", count=1, fault="gone")

    with pytest.raises(ApiException) as gone:
        for _ in new_watch().stream(core.list_namespace, resource_version=start, timeout_seconds=5):
            pass

    assert gone.value.status == 410


def test_watch_without_events_ends_at_its_timeout(core: Api) -> None:
    began = time.monotonic()

    events = list(new_watch().stream(core.list_node, timeout_seconds=1))

    assert events == []
    assert 0.9 < time.monotonic() - began < 5


@pytest.mark.usefixtures("gpu_cluster")
def test_the_api_server_defaults_and_stores_quantities_as_strings(core: Api, batch: Api) -> None:
    """pkg/apis/core/v1/defaults.go: a pod's requests default to its limits (not a template's);
    imagePullPolicy IfNotPresent for a tagged image; quantities come back canonical strings."""
    job = mnist_job()
    job["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"nvidia.com/gpu": "1.0", "memory": "1024Mi"}
    }

    created = batch.create_namespaced_job("default", job)
    pod = job_pods(core, "samples-tf-mnist-demo")[0]

    template = created.spec.template.spec
    assert template.containers[0].resources.limits == {"nvidia.com/gpu": "1", "memory": "1Gi"}
    assert template.containers[0].resources.requests is None
    assert (template.dns_policy, template.termination_grace_period_seconds) == ("ClusterFirst", 30)
    assert created.spec.backoff_limit == 6
    assert created.spec.completion_mode == "NonIndexed"
    container = pod.spec.containers[0]
    assert container.resources.requests == {"nvidia.com/gpu": "1", "memory": "1Gi"}
    assert container.image_pull_policy == "IfNotPresent"
    assert pod.status.qos_class == "Burstable"
    assert {t.key: t.toleration_seconds for t in pod.spec.tolerations if t.toleration_seconds} == {
        "node.kubernetes.io/not-ready": 300,
        "node.kubernetes.io/unreachable": 300,
    }


@pytest.mark.usefixtures("gpu_cluster")
def test_a_job_reports_events_and_nodes_renew_leases(
    clock: ManualClock, core: Api, batch: Api
) -> None:
    batch.create_namespaced_job("default", mnist_job())
    clock.advance(TIMINGS.pod_start + TIMINGS.job_run)

    pod = job_pods(core, "samples-tf-mnist-demo")[0].metadata.name
    events = core.list_namespaced_event("default").items
    by_object: dict[str, list[str]] = {}
    for event in sorted(events, key=lambda e: (e.first_timestamp, e.metadata.resource_version)):
        by_object.setdefault(event.involved_object.name, []).append(event.reason)
    leases: Any = client.CoordinationV1Api(core.api_client).list_namespaced_lease("kube-node-lease")

    assert by_object["samples-tf-mnist-demo"] == ["SuccessfulCreate", "Completed"]
    assert by_object[pod] == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    assert sorted(lease.spec.holder_identity for lease in leases.items) == sorted(
        node.metadata.name for node in core.list_node().items
    )
    renewed = [lease.spec.renew_time.timestamp() for lease in leases.items]
    assert renewed == [pytest.approx(clock.now())] * len(renewed), "kubelets renew as time goes"


def test_a_patch_is_validated_like_a_create(core: Api, apps: Api) -> None:
    """Validation runs on every write: half a GPU is refused on PATCH as on POST."""
    create_namespace(core, "gpu-resources")
    apps.create_namespaced_daemon_set("gpu-resources", plugin_daemonset([SKU_GPU]))
    half = {"resources": {"limits": {"nvidia.com/gpu": "0.5"}}, "name": "nvidia-device-plugin-ctr"}

    with pytest.raises(ApiException) as refused:
        apps.patch_namespaced_daemon_set(
            "nvidia-device-plugin-daemonset",
            "gpu-resources",
            {"spec": {"template": {"spec": {"containers": [half]}}}},
        )

    status = json.loads(str(refused.value.body))
    assert (refused.value.status, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "500m": must be an integer',
            "field": "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]",
        }
    ]
