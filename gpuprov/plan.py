"""`gpuprov plan FILE (--sandbox | --settings FILE) [--json]`: the preflight, with no side effect.

The same reads and judgement as the run's `preflight` step (shared/arm/compute.py, shared/
preflight.py): each candidate with its fit and reasons, quota (limit, used, needed), price, the
chosen candidate and the estimate. Exit 0 when the request can run, 2 when it cannot (quota,
restriction, budget) or is invalid, 1 when Azure could not be asked.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from shared.problems import InvalidRequest
from shared.request import ProvisionRequest
from shared.settings import Settings, SettingsError
from shared.validation import parse_request

if TYPE_CHECKING:
    from shared.preflight import Plan  # the SDKs load only when a plan is made

EXIT_CAN_RUN, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = commands.add_parser(
        "plan",
        help="the preflight with no side effects: candidates, quota, price, the chosen size and "
        "the estimate (exit 0 can run, 2 cannot)",
        description="Reads the location's VM SKUs and vCPU quotas and the candidates' prices, "
        "as the run's preflight step does, and creates nothing. Exit 2 names the limit that "
        "stops the request and how to raise it.",
    )
    plan.add_argument("file", help="request JSON file, or - for standard input")
    plan.add_argument("--json", action="store_true", help="the plan as JSON")
    scope = plan.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--sandbox", action="store_true", help="the local sandbox (started if needed)"
    )
    scope.add_argument("--settings", type=Path, metavar="FILE",
                       help="a deployment's settings from this local.settings.json")  # fmt: skip
    plan.add_argument("--state-dir", type=Path, default=None, help="the sandbox's state directory")


def main(args: argparse.Namespace) -> int:
    from gpuprov.cli import _read, _values, refused
    from sandbox.control import SandboxError

    try:
        if args.sandbox:
            from gpuprov.local import sandbox_values
            from sandbox import control

            where = args.state_dir or control.DEFAULT_STATE_DIR
            control.up(where, 60.0)
            values = sandbox_values(where)
        else:
            values = _values(args.settings, False, None)
        return plan(_read(args.file), values, sys.stdout, sys.stderr, args.json)
    except InvalidRequest as invalid:
        return refused(args.file, invalid)
    except (SettingsError, SandboxError, OSError) as exc:
        print(f"gpuprov plan: {exc}", file=sys.stderr)
        return EXIT_FAILED


def make_plan(request: ProvisionRequest, settings: Settings) -> Plan:
    """The preflight's plan for a valid request (StepError when ARM cannot be asked)."""
    from shared.arm import ArmAdapter

    with ArmAdapter(settings) as arm:
        return arm.preflight(request)


def plan(raw: bytes, values: Mapping[str, str], out: TextIO, err: TextIO, json_output: bool) -> int:
    """Print the plan; InvalidRequest and SettingsError raise, a StepError is exit 1."""
    from shared.errors import StepError

    settings = Settings.from_env(values)
    request = parse_request(raw, settings)
    try:
        found = make_plan(request, settings)
    except StepError as error:
        print(f"gpuprov plan: could not ask Azure: {error.code}: {error.message}", file=err)
        return EXIT_FAILED
    if json_output:
        print(json.dumps(found.wire(), indent=2), file=out)
    else:
        print_plan(found, request, out)
    if found.error is not None:
        print(f"gpuprov plan: {request.request_id} cannot run: {found.error.message}", file=err)
        print(f"  how to fix: {found.error.hint}", file=err)
        return EXIT_CANNOT_RUN
    return EXIT_CAN_RUN


def print_plan(found: Plan, request: ProvisionRequest, out: TextIO) -> None:
    nodes = request.node_pool.node_count
    priority = "spot" if request.node_pool.spot is not None else "on demand"
    print(f"plan for {request.request_id}: {nodes} node(s), {priority}, in {found.location}",
          file=out)  # fmt: skip
    rows = [["", "VM SIZE", "ZONES", "FITS", "USD/H", "WHY NOT"]]
    for candidate in found.candidates:
        chosen = "*" if found.chosen == candidate else ""
        price = "?" if candidate.hourly is None else f"{candidate.hourly:g}"
        fits, zones = "yes" if candidate.fits else "no", ",".join(candidate.zones) or "regional"
        rows.append([chosen, candidate.vm_size, zones, fits, price, "; ".join(candidate.reasons)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
    quotas = {(q.name, q.location, q.needed): q for c in found.candidates for q in c.quota}
    for quota in quotas.values():
        state = "ok" if quota.fits else "SHORT"
        print(f"quota {quota.name} in {quota.location}: limit {quota.limit}, used {quota.used}, "
              f"needed {quota.needed} ({state})", file=out)  # fmt: skip
    for feature in found.features:
        later = "" if feature.state == "Registered" else " (register-features registers it first)"
        print(f"feature {feature.namespace}/{feature.name}: {feature.state}{later}", file=out)
    for part, why in found.unchecked.items():
        print(f"not checked: {part} ({why})", file=out)
    if found.estimate is not None:
        e = found.estimate
        print(f"estimate: {e.cost:.2f} {e.currency} = {e.nodes} x {e.vm_size} at {e.hourly:g}/h "
              f"x {e.hours:g} h", file=out)  # fmt: skip
    if found.budget is not None:
        b = found.budget
        print(f"budget: {b.max_cost:.2f} {b.currency} ({b.source})", file=out)
    verdict = "can run" if found.can_run else "cannot run"
    chosen_size = found.chosen.vm_size if found.chosen is not None else "none"
    print(f"{verdict}; chosen: {chosen_size}", file=out)
