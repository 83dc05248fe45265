"""The seed walkthrough's az commands, brought up to date, run by the pinned stock Azure CLI.

Covers: `eval "$(gpuprov sandbox env)"` gives az a sandbox-owned config directory, a cloud
registered through the simulator's `/metadata/endpoints` and an account signed in through
`az login --identity` (managed-identity token endpoint, `/subscriptions`); then, literally as a
user types them: group create, aks create with the CLI's defaults, aks show (a concrete
Kubernetes version, AKS's defaults), get-versions, get-credentials, feature register/show/list,
provider register/show, nodepool add with `--node-taints sku=gpu:NoSchedule`, nodepool list, a
retired size refused, nodepool delete, aks delete, show after delete (ResourceNotFound), group
delete; signed in as the app's identity (`az login --identity --client-id`), a group delete
refused with ARM's AuthorizationFailed. The CLI is the one `make setup` installs in .venv-az
(requirements-az.txt).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.arm.identity import APP_CLIENT_ID
from tests.conftest import GPUPROV

ROOT = Path(__file__).resolve().parents[2]
AZ = ROOT / ".venv-az" / "bin" / "az"
GROUP, CLUSTER = "myResourceGroup", "myAKSCluster"


@pytest.fixture(scope="module")
def az_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment a user's shell has after `eval "$(gpuprov sandbox env)"`."""
    assert AZ.exists(), "the pinned Azure CLI is missing: run `make setup` (it installs .venv-az)"
    state_dir = tmp_path_factory.mktemp("sandbox")
    home = tmp_path_factory.mktemp("home")  # --generate-ssh-keys writes ~/.ssh: not the user's
    base = {**os.environ, "HOME": str(home)}
    base.pop("AZURE_CONFIG_DIR", None)
    up = [GPUPROV, "sandbox", "up", "--state-dir", str(state_dir), "--time-scale", "600"]
    started = subprocess.run(up, capture_output=True, text=True, timeout=120, env=base)
    assert started.returncode == 0, started.stderr
    try:
        script = f'eval "$({GPUPROV} sandbox env --state-dir {state_dir})" && env -0'
        shell = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=180, env=base
        )
        assert shell.returncode == 0, shell.stderr
        env = dict(line.split("=", 1) for line in shell.stdout.split("\0") if "=" in line)
        yield env
    finally:
        subprocess.run([GPUPROV, "sandbox", "down", "--state-dir", str(state_dir)], timeout=60)


def az(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["az", *args], capture_output=True, text=True, timeout=180, env=env, cwd=env["HOME"]
    )
    assert "Traceback" not in result.stderr, result.stderr
    if ok:
        assert result.returncode == 0, f"az {' '.join(args)}: {result.stderr}"
    return result


def az_json(env: dict[str, str], *args: str) -> object:
    return json.loads(az(env, *args, "-o", "json").stdout)


@pytest.mark.timeout(600)
def test_the_walkthrough_with_a_stock_azure_cli(az_env: dict[str, str]) -> None:
    env = az_env
    assert Path(env["AZURE_CONFIG_DIR"]).is_relative_to(Path(env["KUBECONFIG"]).parent)
    account = az_json(env, "account", "show")
    assert isinstance(account, dict)
    assert account["environmentName"] == "AzureSandbox"
    assert account["user"] == {
        "assignedIdentityInfo": "MSI",
        "name": "systemAssignedIdentity",
        "type": "servicePrincipal",
    }
    assert account["id"] == "00000000-0000-0000-0000-000000000000"

    az(env, "group", "create", "--name", GROUP, "--location", "eastus")
    az(env, "aks", "create", "--resource-group", GROUP, "--name", CLUSTER,
       "--node-count", "1", "--generate-ssh-keys")  # fmt: skip
    shown = az_json(env, "aks", "show", "--resource-group", GROUP, "--name", CLUSTER)
    assert isinstance(shown, dict)
    assert shown["provisioningState"] == "Succeeded"
    version = shown["kubernetesVersion"]
    assert len(version.split(".")) == 3
    assert version == shown["currentKubernetesVersion"]
    assert shown["fqdn"].endswith(".hcp.eastus.azmk8s.io")
    assert shown["azurePortalFqdn"]
    assert shown["identity"]["principalId"]
    assert shown["identity"]["tenantId"]
    assert shown["networkProfile"]["networkPlugin"] == "azure"
    (system,) = shown["agentPoolProfiles"]
    assert (system["orchestratorVersion"], system["maxPods"]) == (version, 250)
    assert system["vmSize"]
    assert system["nodeImageVersion"]

    versions = az_json(env, "aks", "get-versions", "--location", "eastus")
    assert isinstance(versions, dict)
    default = next(v for v in versions["values"] if v.get("isDefault"))
    assert version in default["patchVersions"]

    az(env, "aks", "get-credentials", "--resource-group", GROUP, "--name", CLUSTER)
    kubeconfig = Path(env["KUBECONFIG"]).read_text()
    assert "current-context: myAKSCluster" in kubeconfig
    nodes = subprocess.run(  # the pinned kubectl (.venv/bin) with the kubeconfig az merged
        [str(Path(sys.executable).with_name("kubectl")), "get", "nodes"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert nodes.returncode == 0, nodes.stderr
    assert nodes.stdout.split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert " Ready " in nodes.stdout

    feature = ("--namespace", "Microsoft.ContainerService", "--name", "ManagedGPUExperiencePreview")
    registered = az_json(env, "feature", "register", *feature)
    assert isinstance(registered, dict)
    assert registered["properties"]["state"] == "Registering"
    state = az(env, "feature", "show", *feature, "--query", "properties.state", "-o", "tsv")
    assert state.stdout.strip() in ("Registering", "Registered")
    listed = az(env, "feature", "list", "-o", "table", "--query",
                "[?contains(name, 'Microsoft.ContainerService/ManagedGPU')]"
                ".{Name:name,State:properties.state}")  # fmt: skip
    assert "Microsoft.ContainerService/ManagedGPUExperiencePreview" in listed.stdout
    az(env, "provider", "register", "--namespace", "Microsoft.ContainerService")
    provider = az(env, "provider", "show", "-n", "Microsoft.ContainerService",
                  "--query", "registrationState", "-o", "tsv")  # fmt: skip
    assert provider.stdout.strip() == "Registered"

    pool = ("--resource-group", GROUP, "--cluster-name", CLUSTER)
    az(env, "aks", "nodepool", "add", *pool, "--name", "gpunp", "--node-count", "1",
       "--node-vm-size", "Standard_NC4as_T4_v3", "--node-taints", "sku=gpu:NoSchedule")  # fmt: skip
    pools = az_json(env, "aks", "nodepool", "list", *pool)
    assert isinstance(pools, list)
    taints = {p["name"]: p["nodeTaints"] for p in pools}
    assert sorted(taints) == ["gpunp", "nodepool1"]
    assert taints["gpunp"] == ["sku=gpu:NoSchedule"]
    retired = az(env, "aks", "nodepool", "add", *pool, "--name", "oldgpu",
                 "--node-vm-size", "Standard_NC6", ok=False)  # fmt: skip
    assert retired.returncode != 0
    assert "(SkuNotAvailable)" in retired.stderr

    az(env, "aks", "nodepool", "delete", *pool, "--name", "gpunp")
    az(env, "aks", "delete", "--resource-group", GROUP, "--name", CLUSTER, "--yes")
    gone = az(env, "aks", "show", "--resource-group", GROUP, "--name", CLUSTER, ok=False)
    assert gone.returncode != 0
    assert "(ResourceNotFound)" in gone.stderr
    az(env, "group", "delete", "--name", GROUP, "--yes")
    assert az(env, "group", "exists", "--name", GROUP).stdout.strip() == "false"


@pytest.mark.timeout(300)
def test_the_apps_identity_in_az_is_held_to_the_manifest(
    az_env: dict[str, str], tmp_path: Path
) -> None:
    """`az login --identity --client-id <the app's>`: the app's token, refused a group delete
    with ARM's AuthorizationFailed, while the user's sign-in (the walkthrough's) keeps owner."""
    config = tmp_path / "azure-app"
    shutil.copytree(az_env["AZURE_CONFIG_DIR"], config)
    env = {**az_env, "AZURE_CONFIG_DIR": str(config)}
    az(env, "login", "--identity", "--client-id", APP_CLIENT_ID)
    az(az_env, "group", "create", "--name", "rg-app-check", "--location", "eastus")
    refused = az(env, "group", "delete", "--name", "rg-app-check", "--yes", ok=False)
    assert refused.returncode != 0
    assert "(AuthorizationFailed)" in refused.stderr
    assert (
        "does not have authorization to perform action "
        "'Microsoft.Resources/subscriptions/resourcegroups/delete' over scope "
        "'/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-app-check'"
    ) in refused.stderr
    az(env, "aks", "list", "--resource-group", "platform-rg")  # what the manifest grants
    az(az_env, "group", "delete", "--name", "rg-app-check", "--yes")
    assert az(az_env, "group", "exists", "--name", "rg-app-check").stdout.strip() == "false"


def test_az_lists_gpu_skus_and_the_zero_nd_h100_v5_quota(az_env: dict[str, str]) -> None:
    """`az vm list-skus` / `az vm list-usage` (Microsoft.Compute skus and usages) on the sandbox."""
    skus = az_json(az_env, "vm", "list-skus", "--location", "eastus", "--size", "Standard_NC4as_T4")
    assert isinstance(skus, list)
    assert [s["name"] for s in skus] == ["Standard_NC4as_T4_v3"]
    assert skus[0]["locationInfo"][0]["zones"] == ["1", "2", "3"]
    usage = az_json(az_env, "vm", "list-usage", "--location", "eastus")
    assert isinstance(usage, list)
    limits = {u["name"]["value"]: (u["currentValue"], u["limit"]) for u in usage}
    assert limits["standardNDSH100v5Family"] == ("0", "0")
