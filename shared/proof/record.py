"""A request's proof record from what verify-gpus found: the per-node checks (GpuStatus) and the
smoke workload (SmokeStatus), both in their history (camelCase) form, as CTRF tests, one per
check and node; and the per-node proof the verify-gpus event carries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.proof.ctrf import ProofBuilder, Status
from shared.proof.smoke import TOOLS, tools_for

_NODE_CHECKS = ("gpu-count", "gpu-health", "device-plugin")


def _node_tests(proof: ProofBuilder, node: dict[str, Any]) -> None:
    name, code = node["name"], node.get("code") or ""
    failed = node.get("state") == "failed"
    pending = node.get("state") == "waiting"
    plugin = node.get("plugin") or {}
    outcome = {
        "gpu-count": code == "GpuCountMismatch",
        "gpu-health": code == "GpuHealthCondition",
        "device-plugin": code in ("DevicePluginCrashLoop", "DevicePluginInitFailed"),
    }
    for check in _NODE_CHECKS:
        bad = failed and outcome[check]
        status: Status = "failed" if bad or (pending and check == "gpu-count") else "passed"
        message = node.get("cause") if status == "failed" else None
        extra: dict[str, Any] = {"node": name}
        if check == "gpu-count":
            extra |= {"gpus": node.get("allocatable"), "expectedGpus": node.get("expected")}
        elif check == "gpu-health":
            extra |= {"conditions": node.get("conditions") or None}
        elif plugin:
            extra |= {"pod": plugin.get("name"), "restarts": plugin.get("restarts"),
                      "logTail": plugin.get("logTail") or None}  # fmt: skip
        proof.add(f"{check} {name}", status, 0, message, **extra)


def build_record(
    request_id: str, level: str, vm_size: str, gpus_per_node: int, gpus: dict[str, Any],
    smoke: dict[str, Any] | None, started: datetime, stopped: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The CTRF report; smoke tests a failure kept from running are `skipped`."""
    proof = ProofBuilder(request_id, started)
    smoked = {node["name"]: node for node in (smoke or {}).get("nodes") or []}
    for node in gpus.get("nodes") or []:
        _node_tests(proof, node)
        found: dict[str, Any] = {"node": node["name"], "vmSize": vm_size}
        ran = {result["tool"]: result for result in (smoked.get(node["name"]) or {}).get(
            "results") or []}  # fmt: skip
        for result in ran.values():
            found |= result.get("found") or {}
        for tool in tools_for(level, gpus_per_node):
            result = ran.get(tool)
            test = f"{TOOLS[tool].test} {node['name']}"
            if result is None:
                proof.add(test, "skipped", 0, "not run: an earlier check of the node failed",
                          node=node["name"])  # fmt: skip
                continue
            outcome: Status = "passed" if result["passed"] else "failed"
            proof.add(test, outcome, result.get("durationMs", 0), result.get("message") or None,
                      **{**found, **(result.get("found") or {})})  # fmt: skip
    return proof.report(stopped)


def node_proofs(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per node, what its tests found: GPU model, count, driver, CUDA, memory, bandwidth."""
    nodes: dict[str, dict[str, Any]] = {}
    for test in report["results"]["tests"]:
        extra = dict(test.get("extra") or {})
        node = extra.pop("node", None)
        if node is None:
            continue
        entry = nodes.setdefault(node, {"node": node, "passed": True})
        entry["passed"] = entry["passed"] and test["status"] != "failed"
        for key in ("gpuModel", "gpus", "driver", "cuda", "memoryMiB", "busbwGBps"):
            if key not in extra or (key == "gpus" and key in entry and "gpuModel" not in extra):
                continue  # the count nvidia-smi saw wins over the one allocatable says
            entry[key] = extra[key]
    return list(nodes.values())
