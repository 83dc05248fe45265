"""The ARM simulator's SKU restrictions and vCPU usages, read by the stock Azure CLI.

Covers, as a user types them against an ARM simulator holding standing `SkuNotAvailable` rules:
`az vm list-skus --location eastus --size <size> --all` (JSON and table: the restriction's
reasonCode, type, locations and zones as azure-cli's `transform_sku_for_table_output` prints
them); the same without `--all` hides a size refused in the whole region and keeps one refused in
a single zone (azure-cli `_vm_utils.is_sku_available`); `az vm list-usage --location eastus`
(JSON and table) lists the regional and family vCPU quotas the preflight reads, with the names
Azure shows. The shapes follow azure-rest-api-specs Microsoft.Compute `ResourceSkus_List`
(Skus/stable/2021-07-01/skus.json: `ResourceSkuRestrictions` type Location|Zone,
`restrictionInfo.locations/zones`, reasonCode QuotaId|NotAvailableForSubscription) and
`Usage_List` (ComputeRP 2024-11-01 `Usage`: unit, currentValue, limit, name.value and
name.localizedValue). The CLI is the one `make setup` installs in .venv-az.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from sandbox import azurite, control, tls
from sandbox.arm import ArmSimulator, CapacityRule
from sandbox.clock import ManualClock

A100, T4 = "Standard_NC24ads_A100_v4", "Standard_NC4as_T4_v3"


@pytest.fixture(scope="module")
def az_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A shell signed in (`az login --identity`) to an ARM simulator that refuses the A100 size
    in all of eastus and the T4 size in zone 2, by standing SkuNotAvailable rules."""
    assert (azurite.ROOT / ".venv-az" / "bin" / "az").exists(), (
        "the pinned Azure CLI is missing: run `make setup` (it installs .venv-az)"
    )
    root = tmp_path_factory.mktemp("az-capacity")
    ca = tls.make_ca(root / "ca")
    with ArmSimulator(ManualClock(), ca, tokens=frozenset(), app_tokens=frozenset()) as sim:
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


def az(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        ["az", *args], capture_output=True, text=True, timeout=180, env=env, check=False
    )
    assert result.returncode == 0, f"az {' '.join(args)}: {result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


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
