"""One sandbox world: the ARM and Kubernetes simulators on one clock, and what else a run needs.

`sandbox serve` (behind `gpuprov sandbox up`, `gpuprov run --sandbox` and `make demo`), the
benchmark, the test fixtures and the end-to-end tests all assemble it here, so a simulator
that gains a part or an option gains it everywhere. ARM and Kubernetes always come together:
ARM creating a pool makes its nodes appear in Kubernetes. The Service Bus broker and Azurite
are optional.

Credentials live in one place, `app_settings`: what points the product at the world (the ARM
endpoint, the CA that signed its certificates, the bearer token both simulators accept).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sandbox.clock import Clock

if TYPE_CHECKING:  # the simulators load at open_world: `gpuprov sandbox status` stays quick
    from azure.mgmt.containerservice import ContainerServiceClient

    from sandbox.arm import ArmSimulator, ArmTimings
    from sandbox.azurite import Azurite
    from sandbox.kube import KubeSimulator, KubeTimings
    from sandbox.servicebus import ServiceBusBroker
    from sandbox.tls import TestCA

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
"""The subscription examples/ and the demo use in the sandbox."""
RESOURCE_GROUP = "myResourceGroup"
LOCATION = "eastus"
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - the simulators' fixed test token, not a secret
"""The bearer token the ARM simulator accepts and Entra ID clusters accept (AKS's server app)."""
REQUEST_QUEUES = ("provisioning-requests", "provisioning-requests-poison")
"""The Storage queues the app's infrastructure provides (infra/ on Azure)."""
NEVER = "0 0 0 1 1 *"
"""A reaper schedule that does not fire during a run (once a year)."""

C = TypeVar("C", bound=Clock)


@cache
def allowed_resource_groups() -> tuple[tuple[str, str], ...]:
    """The sandbox deployment's allowed resource groups (subscription, name): myResourceGroup and
    every example's, as `allowedResourceGroups` would name them to infra/main.bicep. The app's
    identity holds its AKS role on these and nowhere else (`sandbox.arm.authorization`), and
    `app_settings` names them in GPUPROV_ALLOWED_RESOURCE_GROUPS, so the policy and the roles
    agree as they do on Azure."""
    groups = {(SUBSCRIPTION, RESOURCE_GROUP): None}
    for path in sorted(EXAMPLES.glob("*.json")):
        request = json.loads(path.read_text())
        groups[(request["subscriptionId"], request["resourceGroup"])] = None
    return tuple(groups)


def app_settings(
    arm_url: str,
    ca_path: Path | str,
    *,
    storage: str | None = None,
    service_bus: str | None = None,
    reaper_schedule: str | None = None,
) -> dict[str, str]:
    """The app settings that point the product at a sandbox world, as `gpuprov sandbox up`
    writes them: the ARM endpoint, its CA and token, and the connections the triggers use."""
    values: dict[str, str] = {}
    if storage is not None:
        values["AzureWebJobsStorage"] = storage
    if service_bus is not None:
        values["ServiceBusConnection"] = service_bus
    values |= {
        "GPUPROV_ARM_ENDPOINT": arm_url,
        "GPUPROV_CA_BUNDLE": str(ca_path),
        "GPUPROV_STATIC_TOKEN": SANDBOX_TOKEN,
        "GPUPROV_ALLOWED_RESOURCE_GROUPS": ",".join(
            dict.fromkeys(name for _, name in allowed_resource_groups())
        ),
        "GPUPROV_PRICES_ENDPOINT": f"{arm_url}/api/retail/prices",
    }
    if reaper_schedule is not None:
        values["GPUPROV_REAPER_SCHEDULE"] = reaper_schedule
    return values


def aks_client(
    arm_url: str,
    ca_path: Path | str,
    subscription: str = SUBSCRIPTION,
    *,
    token: str = SANDBOX_TOKEN,
    **options: Any,
) -> ContainerServiceClient:
    """The real azure-mgmt-containerservice client, pointed at an ARM simulator (`az aks`'s)."""
    from azure.mgmt.containerservice import ContainerServiceClient

    from shared.credentials import StaticTokenCredential

    return ContainerServiceClient(
        StaticTokenCredential(token),
        subscription,
        base_url=arm_url,
        connection_verify=str(ca_path),
        **options,
    )


@dataclass
class World(Generic[C]):
    """The running parts of one sandbox; `broker` and `storage` only when asked for."""

    clock: C
    ca: TestCA
    kube: KubeSimulator
    arm: ArmSimulator
    broker: ServiceBusBroker | None = None
    storage: Azurite | None = None

    def settings(self, reaper_schedule: str | None = None) -> dict[str, str]:
        """The app settings for this world (see `app_settings`)."""
        return app_settings(
            self.arm.url,
            self.ca.ca_path,
            storage=self.storage.connection_string if self.storage else None,
            service_bus=self.broker.connection_string if self.broker else None,
            reaper_schedule=reaper_schedule,
        )

    def aks(self, subscription: str = SUBSCRIPTION, **options: Any) -> ContainerServiceClient:
        return aks_client(self.arm.url, self.ca.ca_path, subscription, **options)

    def add_examples(self) -> None:
        """The requests in examples/: their resource groups and existing clusters exist, as a
        user's would before sending such a request (platform-aks, batch-aks)."""
        for path in sorted(EXAMPLES.glob("*.json")):
            request = json.loads(path.read_text())
            subscription, group = request["subscriptionId"], request["resourceGroup"]
            self.arm.add_resource_group(subscription, group, request["location"])
            if request["target"]["kind"] == "existingCluster":
                cluster = request["target"]["clusterName"]
                self.arm.add_cluster(subscription, group, cluster, request["location"])


@contextmanager
def open_world(
    clock: C,
    ca: TestCA,
    *,
    arm_timings: ArmTimings | None = None,
    kube_timings: KubeTimings | None = None,
    resource_group: bool = True,
    examples: bool = False,
    broker: bool = False,
    broker_on_clock: bool = False,
    storage_dir: Path | None = None,
) -> Iterator[World[C]]:
    """Start the world's parts and stop them all on exit.

    resource_group: the example subscription's myResourceGroup exists. examples: every
    examples/ request's group and existing cluster exist. broker: the local Service Bus broker
    with the app's topology, in real time unless `broker_on_clock` (sandbox serve, whose clock
    is real time sped up). storage_dir: Azurite keeps its data there, with the request queues.
    """
    from sandbox.arm import ArmSimulator, ArmTimings
    from sandbox.kube import KubeSimulator

    with ExitStack() as stack:
        kube = stack.enter_context(
            KubeSimulator(clock, ca, entra_token=SANDBOX_TOKEN, timings=kube_timings)
        )
        arm = stack.enter_context(
            ArmSimulator(
                clock,
                ca,
                kube,
                tokens=frozenset({SANDBOX_TOKEN}),
                timings=arm_timings or ArmTimings(),
                app_resource_groups=allowed_resource_groups(),
            )
        )
        kube.attach_arm(arm)  # `gpuprov sandbox fault` injects ARM faults through kube's front
        world = World(clock, ca, kube, arm)
        if resource_group:
            arm.add_resource_group(SUBSCRIPTION, RESOURCE_GROUP, LOCATION)
        if examples:
            world.add_examples()
        if broker:
            from sandbox.servicebus import CONFIG_PATH, ServiceBusBroker

            bus = ServiceBusBroker(CONFIG_PATH, clock if broker_on_clock else None)
            world.broker = stack.enter_context(bus)
        if storage_dir is not None:
            from sandbox.azurite import Azurite, create_queues

            world.storage = stack.enter_context(Azurite(storage_dir))
            create_queues(world.storage.connection_string, REQUEST_QUEUES)
        yield world
