"""install-device-plugin: server-side apply the NVIDIA device plugin DaemonSet and wait until it
runs on the pool's nodes; skipped where the pool's GPU stack or the cluster already has one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.activity import NoInput, dump, on_cluster
from functions.engine import Run, StepFailed, Steps, fail_on_error
from functions.registry import activity

if TYPE_CHECKING:
    from shared.events import StepName
    from shared.kube import KubeAdapter
    from shared.request import ProvisionRequest
    from shared.sequence import StepAnswer

STEP: StepName = "install-device-plugin"


@activity
def install_device_plugin(payload: Any) -> dict[str, Any]:
    return on_cluster(
        payload, NoInput, lambda kube, request, _: kube.install_device_plugin(request)
    )


@activity
def check_device_plugin(payload: Any) -> dict[str, Any]:
    def check(kube: KubeAdapter, request: ProvisionRequest, _: NoInput) -> StepAnswer:
        from shared.sequence import StepAnswer

        status = kube.device_plugin_status(request)
        return StepAnswer(value=dump(status), done=status.settled)

    return on_cluster(payload, NoInput, check)


def orchestrate(run: Run) -> Steps:
    answer = yield from run.call(install_device_plugin)
    fail_on_error(STEP, answer)
    result = answer.value or {}
    if result.get("action") == "skipped":
        return {"skipped": True, "message": result.get("reason", ""), **result}
    # a DaemonSet just created or changed has no new pod ready yet (its controller, the image
    # pull, the plugin's registration): the first check waits; an unchanged one is checked now
    rolling = result.get("action") in ("created", "configured")
    ready = yield from run.wait(
        check_device_plugin, run.options.device_plugin_minutes, sleep_first=rolling
    )
    fail_on_error(STEP, ready)
    if not ready.done:
        raise StepFailed(STEP, "the device plugin did not become ready in time")
    crashing = (ready.value or {}).get("crashlooping") or []
    if crashing:
        nodes = ", ".join(crashing)
        result["message"] = f"rolled out; CrashLoopBackOff on {nodes}: verify-gpus checks each node"
    return {**result, "status": ready.value}
