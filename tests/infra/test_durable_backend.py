"""The orchestration backend the deployment offers: Azure Storage (default) or the Durable Task
Scheduler, chosen by one azd parameter, read from the Bicep source.

Covers: GPUPROV_ORCHESTRATION_BACKEND → main.bicep's orchestrationBackend, AzureStorage by
default; the scheduler, its task hub (host.json's hubName) and the identity's Durable Task Data
Contributor role on that task hub only when it is chosen; the scheduler's required properties
(azure-rest-api-specs DurableTask.Management 2025-11-01: ipAllowlist and sku; an empty
allow-list refuses every caller); the app settings that override host.json's storageProvider
(type `azureManaged`, an identity-based connection string naming this identity) and fall back
to the extension's Azure Storage defaults; host.json's extension bundle new enough for
`azureManaged` (4.32.0).
"""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT
from tests.infra.bicep import BicepValue, read, resources, variable
from tests.infra.test_infra import FUNCTION_APP, function_app_settings

INFRA = ROOT / "infra"
MAIN = read(INFRA / "main.bicep")
MODULE = read(INFRA / "modules" / "durabletask.bicep")
HOST = json.loads(read(ROOT / "host.json"))
PROVIDER = "AzureFunctionsJobHost__extensions__durableTask__storageProvider"


def test_one_azd_parameter_chooses_the_backend_azure_storage_by_default() -> None:
    passed = json.loads(read(INFRA / "main.parameters.json"))["parameters"]
    assert passed["orchestrationBackend"] == {
        "value": "${GPUPROV_ORCHESTRATION_BACKEND=AzureStorage}"
    }
    declared = re.search(
        r"@allowed\(\['AzureStorage', 'DurableTaskScheduler'\]\)\n@description\('''.*?'''\)\n"
        r"param orchestrationBackend string = 'AzureStorage'\n",
        MAIN,
        re.S,
    )
    assert declared, "main.bicep: orchestrationBackend with its two values, AzureStorage default"
    assert variable(MAIN, "useScheduler") == "orchestrationBackend == 'DurableTaskScheduler'"
    assert "module durableTask 'modules/durabletask.bicep' = if (useScheduler) {" in MAIN


def test_the_task_hub_is_the_one_host_json_names() -> None:
    assert variable(MAIN, "taskHubName") == HOST["extensions"]["durableTask"]["hubName"]
    assert "    taskHubName: taskHubName\n" in MAIN
    by_symbol = {r.symbol: r for r in resources(MODULE)}
    hub = by_symbol["taskHub"]
    assert hub.type == "Microsoft.DurableTask/schedulers/taskHubs"
    assert hub.body == {"parent": "scheduler", "name": "taskHubName"}


def test_the_scheduler_has_the_properties_arm_requires() -> None:
    assert re.search(r"^resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = ",
                     MODULE, re.M)  # fmt: skip
    scheduler = {r.symbol: r for r in resources(MODULE)}["scheduler"]
    properties = scheduler.body["properties"]
    assert isinstance(properties, dict)
    allowed: BicepValue = properties["ipAllowlist"]
    assert isinstance(allowed, list)
    assert allowed, "an empty ipAllowlist refuses every caller, the app included"
    assert "sku" in properties
    assert re.search(r"^@allowed\(\['Dedicated', 'Consumption'\]\)\n", MODULE, re.M)


def test_the_identity_may_use_the_task_hub_and_nothing_more() -> None:
    (assignment,) = [
        r for r in resources(MODULE) if r.type == "Microsoft.Authorization/roleAssignments"
    ]
    assert assignment.body["scope"] == "taskHub"
    properties = assignment.body["properties"]
    assert isinstance(properties, dict)
    assert properties["roleDefinitionId"] == "durableTaskDataContributor"
    assert "'0ad04412-c4d5-4796-b79c-f76d14c8d402')" in variable(
        MODULE, "durableTaskDataContributor"
    )


def test_app_settings_override_host_json_storage_provider() -> None:
    settings = function_app_settings(read(FUNCTION_APP))
    text = read(FUNCTION_APP)
    assert variable(text, "useScheduler") == "!empty(durableTaskSchedulerEndpoint)"
    assert settings[f"{PROVIDER}__type"] == "useScheduler ? 'azureManaged' : 'AzureStorage'"
    assert settings[f"{PROVIDER}__connectionStringName"] == (
        "useScheduler ? 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING' : 'AzureWebJobsStorage'"
    )
    assert settings["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"] == (
        "useScheduler ? 'Endpoint=${durableTaskSchedulerEndpoint};"
        "Authentication=ManagedIdentity;ClientID=${identityClientId}' : ''"
    )
    assert "durableTaskSchedulerEndpoint: useScheduler ? durableTask.outputs.endpoint : ''" in MAIN


def test_host_json_keeps_azure_storage_and_a_bundle_with_azure_managed() -> None:
    durable = HOST["extensions"]["durableTask"]
    assert "type" not in durable["storageProvider"], "the deployment's app settings choose"
    low = re.fullmatch(r"\[(\d+)\.(\d+)\.(\d+), 5\.0\.0\)", HOST["extensionBundle"]["version"])
    assert low, "a bundle range with an explicit lower bound"
    assert tuple(int(part) for part in low.groups()) >= (4, 32, 0)
