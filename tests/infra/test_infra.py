"""The Azure deployment in infra/ against the app it deploys, read from the Bicep source.

Covers: the Function App's app settings set every setting shared/settings.py reads (the sandbox-
only ones never), with identity-based connections and no secret in any value; the Flex runtime;
role assignments named guid(scope, principal, role) with the scope, principal and role they
assign, on built-in roles named where they are used; storage queues, the events topic, its
subscriptions and filters, and the requests queue as the app and the sandbox name them; azd's
parameter file against main.bicep; a justification on every checkov skip. checkov itself runs in
`make check-infra`, outside this venv.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from functions.intake import REQUESTS_QUEUE
from gpuprov.front import POISON_QUEUE
from shared.settings import Settings
from tests.conftest import ROOT
from tests.infra.bicep import (
    BicepValue,
    Resource,
    parse_value,
    read,
    resources,
    target_scope,
    variable,
)

INFRA = ROOT / "infra"
FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

NOT_ON_AZURE = {
    "GPUPROV_STATIC_TOKEN": "a fixed bearer token for the sandbox; on Azure the managed identity "
    "signs in (DefaultAzureCredential with AZURE_CLIENT_ID)",
    "GPUPROV_CA_BUNDLE": "trusts the sandbox's test CA; Azure's endpoints use public CAs",
    "ServiceBusConnection": "a connection string (the local broker's, with its key); on Azure "
    "ServiceBusConnection__fullyQualifiedNamespace reaches Service Bus with the identity",
}
"""Settings the app reads that a deployment must never set, and why."""

IDENTITY_CONNECTIONS = {
    "AzureWebJobsStorage__accountName": "storage.name",
    "AzureWebJobsStorage__credential": "managedidentity",
    "AzureWebJobsStorage__clientId": "identityClientId",
    "ServiceBusConnection__credential": "managedidentity",
    "ServiceBusConnection__clientId": "identityClientId",
    "AZURE_CLIENT_ID": "identityClientId",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "'Authorization=AAD;ClientId=${identityClientId}'",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "appInsights.properties.ConnectionString",
}
"""The Functions host's and the SDKs' identity-based settings, each with the wiring it must have."""

SECRET_MARKERS = (
    "AccountKey",
    "SharedAccessKey",
    "SharedAccessSignature",
    "listKeys(",
    "listConnectionStrings(",
    "listSecrets(",
    "ConnectionString",
    "InstrumentationKey",
)
"""What a key or a connection string with a key looks like in a Bicep value.

The one exception is APPLICATIONINSIGHTS_CONNECTION_STRING read from the component: it carries
an instrumentation key, but the component has local authentication off (checked below), so the
key alone cannot send telemetry; it is an address, and the identity's token is the credential.
"""

BUILT_IN_ROLES = {
    role["id"]: role["role"]
    for role in json.loads(read(INFRA / "permissions.json"))["builtInRoles"]
}
"""The built-in roles the deployment may assign: infra/permissions.json's (learn.microsoft.com
built-in roles pages)."""


def function_app_settings(text: str) -> dict[str, str]:
    """name → value expression of the Function App's siteConfig.appSettings."""
    (site,) = [r for r in resources(text) if r.type == "Microsoft.Web/sites"]
    settings: dict[str, str] = {}
    for entry in _get(site.body, "properties", "siteConfig", "appSettings"):
        assert isinstance(entry, dict), entry
        assert set(entry) == {"name", "value"}, entry
        name, value = entry["name"], entry["value"]
        assert isinstance(name, str), entry
        assert isinstance(value, str), entry
        assert name not in settings, f"{name} is set twice"
        settings[name] = value
    return settings


def secrets_in(settings: dict[str, str]) -> list[str]:
    """The settings whose value looks like a key or a connection string with one."""
    found: list[str] = []
    for name, value in settings.items():
        if (
            name == "APPLICATIONINSIGHTS_CONNECTION_STRING"
            and value == (IDENTITY_CONNECTIONS[name])
        ):
            continue
        found.extend(f"{name}: {marker}" for marker in SECRET_MARKERS if marker in value)
    return found


def _get(value: BicepValue, *path: str) -> BicepValue:
    for key in path:
        assert isinstance(value, dict), f"{key} is not in an object"
        value = value[key]
    return value


@pytest.fixture(scope="module")
def app_settings() -> dict[str, str]:
    return function_app_settings(read(FUNCTION_APP))


def test_app_settings_cover_every_setting_the_app_reads(app_settings: dict[str, str]) -> None:
    read_by_app = {field.alias for field in Settings.model_fields.values() if field.alias}
    assert set(NOT_ON_AZURE) <= read_by_app, "an exception names a setting the app no longer reads"
    missing = read_by_app - set(NOT_ON_AZURE) - set(app_settings)
    assert not missing, f"the Function App does not set {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(NOT_ON_AZURE))
def test_sandbox_only_settings_are_never_deployed(app_settings: dict[str, str], name: str) -> None:
    assert name not in app_settings, NOT_ON_AZURE[name]


def test_connections_are_identity_based(app_settings: dict[str, str]) -> None:
    for name, wiring in IDENTITY_CONNECTIONS.items():
        assert app_settings.get(name) == wiring, f"{name} should be {wiring}"
    assert app_settings["ServiceBusConnection__fullyQualifiedNamespace"] == "serviceBusNamespace"
    assert "AzureWebJobsStorage" not in app_settings, "a storage connection string"


def test_no_setting_holds_a_secret(app_settings: dict[str, str]) -> None:
    assert secrets_in(app_settings) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AzureWebJobsStorage", "'AccountKey=${storage.listKeys().keys[0].value}'"),
        ("ServiceBusConnection", "serviceBusRule.listKeys().primaryConnectionString"),
        ("GPUPROV_OWNER", "'InstrumentationKey=${appInsights.properties.InstrumentationKey}'"),
        ("APPLICATIONINSIGHTS_CONNECTION_STRING", "'InstrumentationKey=0000'"),
    ],
    ids=["storage-account-key", "service-bus-key", "instrumentation-key", "literal-ai-string"],
)
def test_a_secret_in_a_setting_is_caught(name: str, value: str) -> None:
    text = read(FUNCTION_APP)
    entry = f"{{ name: '{name}', value: {value} }}"
    existing = re.compile(rf"\{{ name: '{name}', value: .*\}}")
    if existing.search(text):
        site = existing.sub(lambda _: entry, text, count=1)
    else:
        site = text.replace("appSettings: [", f"appSettings: [\n        {entry}", 1)
    settings = function_app_settings(site)
    assert settings[name] == parse_value(value)
    assert any(finding.startswith(f"{name}: ") for finding in secrets_in(settings))


def test_the_app_knows_when_its_roles_were_assigned(app_settings: dict[str, str]) -> None:
    """The propagation retry (shared/errors.py while_roles_propagate) counts from the
    deployment's own time, and the app starts only after its role assignments exist."""
    main = read(INFRA / "main.bicep")
    assert app_settings["GPUPROV_ROLES_ASSIGNED_AT"] == "rolesAssignedAt"
    assert re.search(r"^param deployedAt string = utcNow\('o'\)$", main, re.M)
    assert "    rolesAssignedAt: deployedAt\n" in main
    assert "  dependsOn: [targetGroupRoles, featureRegistrationRole, capacityReaderRole]\n}" in main


def test_application_insights_accepts_only_entra_tokens() -> None:
    (component,) = [
        r
        for r in resources(read(INFRA / "modules" / "monitoring.bicep"))
        if r.type == "Microsoft.Insights/components"
    ]
    assert _get(component.body, "properties", "DisableLocalAuth") == "true"


def test_the_app_runs_python_3_11_on_flex_consumption(app_settings: dict[str, str]) -> None:
    text = read(FUNCTION_APP)
    by_type = {r.type: r for r in resources(text)}
    plan, site = by_type["Microsoft.Web/serverfarms"], by_type["Microsoft.Web/sites"]
    assert _get(plan.body, "sku") == {"name": "FC1", "tier": "FlexConsumption"}
    config = _get(site.body, "properties", "functionAppConfig")
    assert _get(config, "runtime") == {"name": "python", "version": "3.11"}
    assert _get(config, "deployment", "storage", "authentication", "type") == "UserAssignedIdentity"
    assert "FUNCTIONS_WORKER_RUNTIME" not in app_settings, "Flex Consumption refuses this setting"
    assert _get(site.body, "identity", "type") == "UserAssigned"


def _role_assignments() -> list[tuple[Path, str, Resource]]:
    found: list[tuple[Path, str, Resource]] = []
    for path in BICEP_FILES:
        text = read(path)
        found.extend(
            (path, target_scope(text), resource)
            for resource in resources(text)
            if resource.type == "Microsoft.Authorization/roleAssignments"
        )
    return found


ROLE_ASSIGNMENTS = _role_assignments()


@pytest.mark.parametrize(
    ("path", "scope", "assignment"),
    ROLE_ASSIGNMENTS,
    ids=[f"{path.stem}-{assignment.symbol}" for path, _, assignment in ROLE_ASSIGNMENTS],
)
def test_role_assignments_are_named_guid_of_scope_principal_role(
    path: Path, scope: str, assignment: Resource
) -> None:
    name = _get(assignment.body, "name")
    assert isinstance(name, str)
    match = re.fullmatch(r"guid\(([^,]+), ([^,]+), ([^,]+)\)", name)
    assert match, f"{assignment.symbol}: name {name!r} is not guid(scope, principal, role)"
    scope_id, principal, role = match.groups()
    if "scope" in assignment.body:
        assert scope_id == f"{assignment.body['scope']}.id"
    else:
        assert scope_id == f"{scope}().id", f"{assignment.symbol} is assigned at its {scope}"
    assert principal == _get(assignment.body, "properties", "principalId")
    assert role == _get(assignment.body, "properties", "roleDefinitionId")
    assert _get(assignment.body, "properties", "principalType") == "ServicePrincipal"


def test_there_are_role_assignments_to_check() -> None:
    assert len(ROLE_ASSIGNMENTS) >= 9


@pytest.mark.parametrize("path", BICEP_FILES, ids=[p.stem for p in BICEP_FILES])
def test_built_in_roles_are_known_and_named_where_used(path: Path) -> None:
    text = read(path)
    for role_id in re.findall(
        r"'Microsoft.Authorization/roleDefinitions', '([0-9a-f-]{36})'", text
    ):
        assert role_id in BUILT_IN_ROLES, f"{path.name}: {role_id} is not a role this deploys"
        assert f"{BUILT_IN_ROLES[role_id]} {role_id}" in text, (
            f"{path.name}: cite {role_id} as '{BUILT_IN_ROLES[role_id]} {role_id}' in a comment"
        )


def test_storage_has_the_requests_queue_and_its_poison_queue() -> None:
    text = read(INFRA / "modules" / "storage.bicep")
    assert variable(text, "requestsQueueName") == REQUESTS_QUEUE
    assert variable(text, "poisonQueueName") == "'${requestsQueueName}-poison'"
    assert f"{REQUESTS_QUEUE}-poison" == POISON_QUEUE
    props = {r.symbol: r.body for r in resources(text)}["storage"]["properties"]
    assert isinstance(props, dict)
    assert (props["allowSharedKeyAccess"], props["allowBlobPublicAccess"]) == ("false", "false")
    assert props["minimumTlsVersion"] == "TLS1_2"


def _sandbox_topology() -> dict:
    config = json.loads(read(ROOT / "sandbox" / "servicebus" / "Config.json"))
    (namespace,) = config["UserConfig"]["Namespaces"]
    return namespace


def test_service_bus_matches_the_app_and_the_sandbox() -> None:
    text = read(INFRA / "modules" / "servicebus.bicep")
    sandbox = _sandbox_topology()
    (topic,) = sandbox["Topics"]
    assert variable(text, "eventsTopicName") == Settings().events_topic == topic["Name"]
    assert variable(text, "requestsQueueName") == REQUESTS_QUEUE == sandbox["Queues"][0]["Name"]
    by_symbol = {r.symbol: r.body for r in resources(text)}
    assert _get(by_symbol["eventsTopic"], "properties", "requiresDuplicateDetection") == "true"
    assert _get(by_symbol["namespace"], "properties", "disableLocalAuth") == "true"
    assert _get(by_symbol["namespace"], "sku", "name") == "Standard"
    deployed: dict[BicepValue, dict[BicepValue, BicepValue]] = {"all": {}}
    assert _get(by_symbol["allEvents"], "name") == "all"
    for entry in variable(text, "filteredSubscriptions"):
        assert isinstance(entry, dict)
        deployed[entry["name"]] = {entry["ruleName"]: entry["properties"]}
    expected = {
        sub["Name"]: {
            rule["Name"]: rule["Properties"]["CorrelationFilter"]["Properties"]
            for rule in sub.get("Rules", [])
        }
        for sub in topic["Subscriptions"]
    }
    assert deployed == expected
    assert set(deployed) == {"all", "failures", "completed"}


def test_azd_parameters_match_main_bicep() -> None:
    declared = dict(re.findall(r"^param (\w+) \w+( =)?", read(INFRA / "main.bicep"), re.M))
    passed = json.loads(read(INFRA / "main.parameters.json"))["parameters"]
    assert set(passed) <= set(declared), "main.parameters.json passes an unknown parameter"
    required = {name for name, default in declared.items() if not default}
    assert required <= set(passed), "azd would prompt for a parameter it cannot set"


def test_every_checkov_skip_says_why() -> None:
    skips = [
        (path.name, match)
        for path in BICEP_FILES
        for match in re.findall(r"checkov:skip=(.*)", read(path))
    ]
    assert skips, "no skips found: the pattern no longer matches the comments"
    for name, skip in skips:
        check, _, reason = skip.partition(":")
        assert re.fullmatch(r"CKV2?_AZURE_\d+", check), f"{name}: {skip}"
        assert len(reason.split()) >= 8, f"{name}: {check} needs a real justification"
