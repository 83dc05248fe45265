"""The ARM simulator's SKU restrictions and vCPU usages, read by the stock Azure CLI.

Covers, as a user types them against an ARM simulator holding standing `SkuNotAvailable` rules:
`az vm list-skus --location eastus --size <size> --all` (JSON and table: the restriction's
reasonCode, type, locations and zones as azure-cli's `transform_sku_for_table_output` prints
them); the same without `--all` hides a size refused in the whole region and keeps one refused in
a single zone (azure-cli `_vm_utils.is_sku_available`); `az vm list-usage --location eastus`
(JSON and table) lists the regional and family vCPU quotas the preflight reads, with the names
Azure shows; `az aks nodepool add` of those sizes is refused as the lists foretold
(SkuNotAvailable, QuotaExceeded), and az prints AKS's own refusals of an unsupported Kubernetes
version and of a preview header whose feature is not registered. The shapes follow
azure-rest-api-specs Microsoft.Compute `ResourceSkus_List` (Skus/stable/2021-07-01/skus.json:
`ResourceSkuRestrictions` type Location|Zone, `restrictionInfo.locations/zones`, reasonCode
QuotaId|NotAvailableForSubscription) and `Usage_List` (ComputeRP 2024-11-01 `Usage`: unit,
currentValue, limit, name.value and name.localizedValue). The CLI is the one `make setup`
installs in .venv-az.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator

import pytest

from sandbox import azurite, control, tls
from sandbox.arm import ArmSimulator, CapacityRule
from sandbox.clock import ManualClock
from shared.arm.compute import ComputeView, SkuOffer
from shared.preflight import judge
from tests.builders import build_request

A100, T4 = "Standard_NC24ads_A100_v4", "Standard_NC4as_T4_v3"


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def az_env(
    tmp_path_factory: pytest.TempPathFactory, clock: ManualClock
) -> Iterator[dict[str, str]]:
    """A shell signed in (`az login --identity`) to an ARM simulator that refuses the A100 size
    in all of eastus and the T4 size in zone 2, by standing SkuNotAvailable rules."""
    assert (azurite.ROOT / ".venv-az" / "bin" / "az").exists(), (
        "the pinned Azure CLI is missing: run `make setup` (it installs .venv-az)"
    )
    root = tmp_path_factory.mktemp("az-capacity")
    ca = tls.make_ca(root / "ca")
    with ArmSimulator(clock, ca, tokens=frozenset(), app_tokens=frozenset()) as sim:
        sim.add_capacity_rule(CapacityRule(A100, "SkuNotAvailable"))
        sim.add_capacity_rule(CapacityRule(T4, "SkuNotAvailable", zone="2"))
        script = control.az_shell(
            sim.url, str(ca.ca_path), sim.identity_header, root / "azure", root / "kubeconfig"
        )
        base = {**os.environ, "HOME": str(root)}
        base.pop("AZURE_CONFIG_DIR", None)
        shell = subprocess.run(
            ["bash", "-c", script + "env -0"],
            capture_output=True, text=True, timeout=180, env=base, check=False,
        )  # fmt: skip
        assert shell.returncode == 0, shell.stderr
        yield dict(line.split("=", 1) for line in shell.stdout.split("\0") if "=" in line)


def _az(env: dict[str, str], args: tuple[str, ...], code: int) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["az", *args], capture_output=True, text=True, timeout=180, env=env, check=False
    )
    assert result.returncode == code, f"az {' '.join(args)}: {result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def az(env: dict[str, str], *args: str) -> str:
    return _az(env, args, 0).stdout


def az_refused(env: dict[str, str], *args: str) -> str:
    """What az prints when ARM refuses the command (its exit code 1, no traceback)."""
    return _az(env, args, 1).stderr


def test_az_list_skus_all_shows_the_region_and_zone_restrictions(az_env: dict[str, str]) -> None:
    listed = json.loads(az(az_env, "vm", "list-skus", "--location", "eastus", "--size",
                           "Standard_NC", "--all", "--output", "json"))  # fmt: skip
    skus = {s["name"]: s for s in listed}
    assert {A100, T4} <= set(skus)
    assert all(s["locations"] == ["eastus"] for s in listed)
    assert skus[A100]["restrictions"] == [
        {
            "type": "Location",
            "values": ["eastus"],
            "restrictionInfo": {"locations": ["eastus"]},
            "reasonCode": "NotAvailableForSubscription",
        }
    ]
    (zonal,) = skus[T4]["restrictions"]
    assert (zonal["type"], zonal["restrictionInfo"]["zones"]) == ("Zone", ["2"])
    # the zones the size exists in stay listed; the restriction says which are refused
    # (azure-cli is_sku_available subtracts restrictionInfo.zones from locationInfo zones)
    assert skus[T4]["locationInfo"][0]["zones"] == ["1", "2", "3"]
    assert skus["Standard_NC8as_T4_v3"]["restrictions"] == []


def test_az_list_skus_table_prints_the_restrictions(az_env: dict[str, str]) -> None:
    table = az(az_env, "vm", "list-skus", "--location", "eastus", "--size", "Standard_NC",
               "--all", "--output", "table")  # fmt: skip
    rows = {line.split()[2]: line for line in table.splitlines()[2:] if line.strip()}
    assert rows[A100].split(None, 4)[4] == (
        "NotAvailableForSubscription, type: Location, locations: eastus"
    )
    assert rows[T4].split(None, 4)[3:] == [
        "1,2,3",
        "NotAvailableForSubscription, type: Zone, locations: eastus, zones: 2",
    ]
    assert rows["Standard_NC8as_T4_v3"].split()[3:] == ["1,2,3", "None"]


def test_az_list_skus_without_all_hides_only_the_size_refused_in_the_region(
    az_env: dict[str, str],
) -> None:
    listed = json.loads(az(az_env, "vm", "list-skus", "--location", "eastus", "--size",
                           "Standard_NC", "--output", "json"))  # fmt: skip
    names = {s["name"] for s in listed}
    assert A100 not in names
    assert T4 in names  # two zones are still offered


def test_the_preflights_hint_command_shows_the_restriction_it_reports(
    az_env: dict[str, str],
) -> None:
    """The preflight's SkuNotAvailable hint names an az command: run as written, it lists the
    refused size with its restriction (without `--all` az would leave that size out)."""
    refused = SkuOffer(name=A100, family="StandardNCADSA100v4Family", vcpus=24,
                       restricted="NotAvailableForSubscription")  # fmt: skip
    view = ComputeView(location="eastus", skus={A100.lower(): refused})
    plan = judge(build_request(nodePool={"vmSize": A100}), view, {})
    assert plan.error is not None
    assert plan.error.code == "SkuNotAvailable"
    command = shlex.split(plan.error.hint.split("`")[1])
    assert command[:3] == ["az", "vm", "list-skus"]
    rows = [line.split(None, 4) for line in az(az_env, *command[1:]).splitlines()[2:]]
    assert [(r[2], r[4]) for r in rows] == [
        (A100, "NotAvailableForSubscription, type: Location, locations: eastus")
    ]


def test_az_list_usage_shows_the_vcpu_quotas_by_azures_names(az_env: dict[str, str]) -> None:
    usage = json.loads(az(az_env, "vm", "list-usage", "--location", "eastus", "--output", "json"))
    by_name = {u["name"]["value"]: u for u in usage}
    assert by_name["cores"]["name"]["localizedValue"] == "Total Regional vCPUs"
    assert (by_name["standardNDSH100v5Family"]["currentValue"],
            by_name["standardNDSH100v5Family"]["limit"]) == ("0", "0")  # fmt: skip
    assert all(u["unit"] == "Count" for u in usage)
    table = az(az_env, "vm", "list-usage", "--location", "eastus", "--output", "table")
    lines = table.splitlines()
    assert lines[0].split() == ["Name", "CurrentValue", "Limit"]
    # the names a real `az vm list-usage -o table` prints (CMASCenter/cyclecloud-cmaq
    # docs/user_guide_cyclecloud/demo/demo-cluster.md); the sandbox printed name.value before
    assert any(line.split() == ["Total", "Regional", "Low-priority", "vCPUs", "0", "500"]
               for line in lines)  # fmt: skip
    assert any(line.split() == ["Standard", "NCASv3_T4", "Family", "vCPUs", "0", "400"]
               for line in lines)  # fmt: skip
    assert any(line.split() == ["Standard", "NDSH100v5", "Family", "vCPUs", "0", "0"]
               for line in lines)  # fmt: skip


@pytest.fixture(scope="module")
def nodepool_add(az_env: dict[str, str], clock: ManualClock) -> tuple[str, ...]:
    """`az aks nodepool add` on a cluster `az aks create --no-wait` made (its operation ended
    on the simulator's clock)."""
    az(az_env, "group", "create", "--name", "rg-gpu", "--location", "eastus")
    az(az_env, "aks", "create", "--resource-group", "rg-gpu", "--name", "aks-gpu",
       "--node-count", "1", "--generate-ssh-keys", "--no-wait")  # fmt: skip
    clock.advance(3600)
    state = az(az_env, "aks", "show", "--resource-group", "rg-gpu", "--name", "aks-gpu",
               "--query", "provisioningState", "--output", "tsv")  # fmt: skip
    assert state.strip() == "Succeeded"
    return ("aks", "nodepool", "add", "--resource-group", "rg-gpu", "--cluster-name", "aks-gpu",
            "--node-count", "1")  # fmt: skip


def test_az_nodepool_add_is_refused_as_list_skus_and_list_usage_foretold(
    az_env: dict[str, str], nodepool_add: tuple[str, ...]
) -> None:
    """The PUT's answers agree with the lists: a restricted size is SkuNotAvailable, a size
    without quota QuotaExceeded, both on the PUT itself (400) as `az` shows ARM errors."""
    pool = nodepool_add
    restricted = az_refused(az_env, *pool, "--name", "a100", "--node-vm-size", A100)
    assert f"(SkuNotAvailable) The requested VM size {A100} is currently not available" in (
        restricted
    )
    no_quota = az_refused(az_env, *pool, "--name", "h100", "--node-vm-size",
                          "Standard_ND96isr_H100_v5")  # fmt: skip
    assert "(QuotaExceeded)" in no_quota
    assert "standardNDSH100v5Family" in no_quota
    assert "Current Limit: 0, Current Usage: 0, Additional Required: 96" in no_quota


def test_az_meets_aks_own_refusals_of_a_version_and_an_unregistered_feature(
    az_env: dict[str, str], nodepool_add: tuple[str, ...]
) -> None:
    """AKS's codes and wording for an unsupported version (sandbox/arm/defaults.py cites where
    users met it) and a preview header whose feature is not registered (sandbox/arm/features.py),
    as `az` prints them."""
    az(az_env, "group", "create", "--name", "rg-old", "--location", "eastus")
    old = az_refused(az_env, "aks", "create", "--resource-group", "rg-old", "--name", "old",
                     "--kubernetes-version", "1.20.7", "--generate-ssh-keys")  # fmt: skip
    assert "(AgentPoolK8sVersionNotSupported) Version 1.20.7 is not supported in this region" in (
        old
    )
    header = az_refused(az_env, *nodepool_add, "--name", "vhd", "--node-vm-size", T4,
                        "--aks-custom-headers", "UseGPUDedicatedVHD=true")  # fmt: skip
    assert (
        "(BadRequest) Feature Microsoft.ContainerService/GPUDedicatedVHDPreview is not enabled. "
        "Please see https://aka.ms/aks/previews for how to enable features."
    ) in header
