"""`gpuprov`: the provisioner's command line.

Exit codes: 0 success, 1 the command could not do its work (e.g. bad settings), 2 invalid input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gpuprov import plan as plan_command
from shared.problems import InvalidRequest, Problem
from shared.request import json_schema
from shared.settings import Settings, SettingsError
from shared.validation import MAX_REQUEST_BYTES, parse_request

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """The command; a reader that stops early (`| head`) ends it quietly, as with any tool."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's advice (signal docs, "Note on SIGPIPE"): point stdout at devnull so the
        # interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="gpuprov", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a request file against the contract and policy; print it normalised",
        description="Exit 0 and print the normalised request, or exit 2 and print a JSON list "
        "of {path, message} errors.",
    )
    validate.add_argument("file", help="request JSON file, or - for standard input")
    validate.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help="take the policy settings from this local.settings.json instead of the environment",
    )
    commands.add_parser(
        "schema",
        help="print the request's JSON Schema",
        description="Prints the JSON Schema of a request (contract gpuprov/v1), the same as "
        "schemas/provision-request.schema.json: point an editor or a validator at it.",
    )

    run = commands.add_parser(
        "run",
        help="run a request's whole sequence in this process (exit 0 completed, 1 failed, "
        "2 invalid)",
        description="Runs the real orchestrator and activities in this process and prints "
        "each step as it happens, then a summary. Ctrl-C (or SIGTERM) cancels: the run deletes "
        "what it created and says what is left; a second Ctrl-C leaves at once (exit 130) and "
        "prints what may be left and the command that removes it.",
    )
    run.add_argument("file", help="request JSON file, or - for standard input")
    run.add_argument(
        "--sandbox", action="store_true", help="against the local sandbox (started if needed)"
    )
    run.add_argument("--json", action="store_true", help="one CloudEvent JSON line per event")
    run.add_argument("--state-dir", type=Path, default=None, help="the sandbox's state directory")
    run.add_argument(
        "--time-scale", type=float, default=60.0, help="sandbox speed-up when it starts one "
        "(default 60)",
    )  # fmt: skip

    submit = commands.add_parser(
        "submit",
        help="put a request on the app's requests queue (exit 2 when it is invalid)",
        description="Checks the request first, as the app will; prints its request id.",
    )
    submit.add_argument("file", help="request JSON file, or - for standard input")
    submit.add_argument(
        "--via",
        choices=["queue", "servicebus"],
        default="queue",
        help="the Storage queue (default) or the Service Bus queue",
    )
    submit.add_argument(
        "--no-check", action="store_true", help="send it unchecked (to see the app reject it)"
    )
    _connection_options(submit)

    watch = commands.add_parser(
        "watch",
        help="follow the events topic; with --request, until that request's final event "
        "(exit 0 completed, 1 failed or rejected)",
        description="Peeks at a topic subscription (it takes nothing from other subscribers) "
        "and prints each event; events already there when it began are marked `replayed`. Once "
        "a request's run was accepted, only its completed or failed event ends the watch.",
    )
    watch.add_argument("--request", metavar="ID", help="only this request; stop at its end")
    watch.add_argument("--subscription", default="all", help="topic subscription (default all)")
    watch.add_argument("--json", action="store_true", help="print each CloudEvent as JSON")
    watch.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS",
        help="give up after this long (exit 1); default: follow until the end",
    )  # fmt: skip
    _connection_options(watch)

    parked = commands.add_parser(
        "poison",
        help="list the requests the app gave up on (provisioning-requests-poison), or replay them",
    )
    parked.add_argument("action", choices=["list", "replay"], help="replay: back onto the queue")
    _connection_options(parked)

    reaper = commands.add_parser(
        "reap",
        help="run the reaper now: delete what this deployment left past its expiry, or with "
        "--dry-run show it (exit 1 when it could not do everything)",
        description="Prints a table of what it deletes (or would), what it leaves and why. "
        "Without a Durable host to ask, only expiry counts here: orphans of finished runs are "
        "left to the timer.",
    )
    reaper.add_argument("--dry-run", action="store_true", help="delete nothing; show the plan")
    reaper.add_argument("--json", action="store_true", help="the report as JSON")
    reaper.add_argument(
        "--subscription", action="append", default=[], metavar="ID",
        help="scan this subscription too (repeatable)",
    )  # fmt: skip
    scope = reaper.add_mutually_exclusive_group(required=True)
    scope.add_argument("--sandbox", action="store_true", help="the running local sandbox")
    scope.add_argument("--settings", type=Path, metavar="FILE",
                       help="a deployment's settings from this local.settings.json")  # fmt: skip
    reaper.add_argument(
        "--state-dir", type=Path, default=None, help="the sandbox's state directory"
    )

    demo = commands.add_parser(
        "demo",
        help="the main job on the sandbox: the seed walkthrough through the Storage queue, "
        "followed on Service Bus to its end (exit 0 completed)",
        description="Starts the sandbox (unless it runs) and the app's triggers on it, submits "
        "examples/seed-walkthrough.json under a fresh id, prints its events to the end and a "
        "summary, then stops what it started. About a minute.",
    )
    demo.add_argument("--state-dir", type=Path, default=None, help="the sandbox's state directory")
    demo.add_argument(
        "--time-scale", type=float, default=60.0, help="sandbox speed-up (default 60)"
    )

    host = commands.add_parser(
        "host",
        help="run the app's triggers locally against the sandbox (queues, Service Bus, timers, "
        "HTTP) until interrupted",
        description="Runs this app's functions on a local Functions host against the running "
        "sandbox, in the foreground; the app's log lines (accepted, duplicate, rejected, the "
        "reaper's report) go to stderr. The function key is written to .sandbox/function-key.",
    )
    host.add_argument("--state-dir", type=Path, default=None, help="the sandbox's state directory")
    host.add_argument(
        "--time-scale", type=float, default=60.0, help="sandbox speed-up (default 60)"
    )
    host.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071, as func)")

    proof = commands.add_parser(
        "proof",
        help="print a request's proof that its GPUs work (CTRF; exit 0 when every test passed)",
        description="Reads proofs/{requestId}.json from the app's storage account "
        "(AzureWebJobsStorage) and prints each check per node: GPU model, count, driver, CUDA.",
    )
    proof.add_argument("request_id", metavar="REQUEST_ID")
    proof.add_argument("--json", action="store_true", help="the CTRF report as stored")
    where = proof.add_mutually_exclusive_group(required=True)
    where.add_argument("--sandbox", action="store_true", help="the running local sandbox's")
    where.add_argument("--settings", type=Path, metavar="FILE",
                       help="a deployment's settings from this local.settings.json")  # fmt: skip
    proof.add_argument("--state-dir", type=Path, default=None, help="the sandbox's state directory")

    _add_sandbox(commands)
    plan_command.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return EXIT_OK
    if args.command == "sandbox":
        if args.action == "kubeconfig":
            return _sandbox_kubeconfig(args)
        if args.action == "fault":
            return _sandbox_fault(args)
        return _sandbox(args.action, args.state_dir, getattr(args, "time_scale", 60.0))
    if args.command == "proof":
        return _guarded("proof", lambda: _proof(args))
    if args.command == "run":
        return _run(args)
    if args.command == "plan":
        return plan_command.main(args)
    if args.command in ("submit", "watch", "poison"):
        return _front_door(args)
    if args.command == "reap":
        return _guarded("reap", lambda: _reap(args))
    if args.command == "demo":
        from gpuprov import demo as demo_module

        return _guarded("demo", lambda: demo_module.demo(args.state_dir, args.time_scale))
    if args.command == "host":
        from gpuprov import demo as demo_module

        return _guarded(
            "host", lambda: demo_module.host(args.state_dir, args.time_scale, args.port)
        )
    return _validate(args.file, args.settings)


def _add_sandbox(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`gpuprov sandbox up|status|down|env|kubeconfig`, each with its own options."""
    sandbox = commands.add_parser(
        "sandbox", help="start, inspect or stop the local sandbox (simulated Azure on 127.0.0.1)"
    )
    actions = sandbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--state-dir", type=Path, default=None, help="where ports, PIDs and the CA are kept"
    )
    up = actions.add_parser("up", parents=[where], help="start it in the background")
    up.add_argument(
        "--time-scale",
        type=float,
        default=60.0,
        help="simulated seconds per real second for cloud operations (default 60)",
    )
    actions.add_parser("status", parents=[where], help="its endpoints, their PIDs, live or not")
    actions.add_parser("down", parents=[where], help="stop exactly what up started")
    actions.add_parser(
        "env",
        parents=[where],
        help="shell exports that point a stock Azure CLI at the sandbox: "
        'eval "$(gpuprov sandbox env)"',
    )
    kubeconfig = actions.add_parser(
        "kubeconfig",
        parents=[where],
        help="a sandbox cluster's kubeconfig, the sandbox's `az aks get-credentials`",
        description="Asks the sandbox's ARM simulator for the cluster's user credentials, as "
        "`az aks get-credentials` does, and writes the kubeconfig (it holds a token) to a file "
        "only its owner can read. kubectl then talks to that cluster's own API server.",
    )
    fault = actions.add_parser(
        "fault", parents=[where], help="inject a failure drill into the running sandbox",
        description="Arms one named fault (GPU, Kubernetes or ARM) for what the provisioner does "
        "next, so you can watch it handle the failure. --list shows them all.",
    )  # fmt: skip
    fault.add_argument("name", nargs="?", metavar="NAME", help="the fault (see --list)")
    fault.add_argument("--list", action="store_true", help="every fault and what to expect")
    kubeconfig.add_argument(
        "--resource-group", "-g", required=True, metavar="RG", help="the cluster's resource group"
    )
    kubeconfig.add_argument(
        "--name", "-n", required=True, metavar="CLUSTER", help="the managed cluster's name"
    )
    kubeconfig.add_argument(
        "--file",
        type=Path,
        default=None,
        metavar="PATH",
        help="where to write it, owner-only (default: kubeconfig in the state directory)",
    )


def _sandbox_fault(args: argparse.Namespace) -> int:
    from gpuprov import drills
    from sandbox import control

    if args.list or not args.name:
        drills.print_list(sys.stdout)
        return EXIT_OK if args.list else EXIT_INVALID
    try:
        drills.inject(args.state_dir or control.DEFAULT_STATE_DIR, args.name, sys.stdout)
    except control.SandboxError as exc:
        print(f"gpuprov sandbox fault: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _proof(args: argparse.Namespace) -> int:
    from gpuprov.proof import show
    from shared.proof.store import ProofStoreError

    try:
        values = _values(args.settings, args.sandbox, args.state_dir)
        return show(values, args.request_id, sys.stdout, args.json)
    except ProofStoreError as exc:
        print(f"gpuprov proof: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _sandbox_kubeconfig(args: argparse.Namespace) -> int:
    from sandbox import control

    where = args.state_dir or control.DEFAULT_STATE_DIR
    try:
        config = control.kubeconfig(where, args.resource_group, args.name)
        path = args.file or where / "kubeconfig"  # it holds a token: a file, never stdout
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_bytes(config)
    except (control.SandboxError, OSError) as exc:
        print(f"gpuprov sandbox kubeconfig: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"kubeconfig for {args.name} written to {path} (export KUBECONFIG={path.resolve()})")
    return EXIT_OK


def _guarded(command: str, action: Callable[[], int]) -> int:
    """Run a long command; what it cannot do is one line on stderr and exit 1, no traceback."""
    from gpuprov.front import FrontDoorError
    from sandbox.control import SandboxError
    from sandbox.functions_host import FunctionsHostError

    try:
        return action()
    except (FrontDoorError, FunctionsHostError, SandboxError, SettingsError, OSError) as exc:
        print(f"gpuprov {command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"gpuprov {command}: interrupted; everything it started is stopped", file=sys.stderr)
        return EXIT_FAILED


def _reap(args: argparse.Namespace) -> int:
    from gpuprov.reap import run_reaper, sandbox_subscriptions

    values = _values(args.settings, args.sandbox, args.state_dir)
    now, subscriptions = None, list(args.subscription)
    if args.sandbox:
        from gpuprov.local import sandbox_clock
        from sandbox import control
        from sandbox.clock import utc

        now = utc(sandbox_clock(args.state_dir or control.DEFAULT_STATE_DIR, 60.0))
        subscriptions += sandbox_subscriptions()
    return run_reaper(values, dry_run=args.dry_run, now=now, subscriptions=subscriptions,
                      out=sys.stdout, json_output=args.json)  # fmt: skip


def _connection_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--settings", type=Path, metavar="FILE", help="connections from this local.settings.json"
    )
    where.add_argument("--sandbox", action="store_true", help="the running local sandbox's")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="the sandbox's state directory"
    )


def _front_door(args: argparse.Namespace) -> int:
    from gpuprov.front import FrontDoorError, already_submitted, poison, submit, watch

    try:
        values = _values(args.settings, args.sandbox, args.state_dir)
        if args.command == "poison":
            return poison(values, replay=args.action == "replay", out=sys.stdout)
        if args.command == "watch":
            return watch(
                values,
                request_id=args.request,
                subscription=args.subscription,
                out=sys.stdout,
                json_lines=args.json,
                timeout=args.timeout,
            )
        raw = _read(args.file)
        if not args.no_check:
            request = parse_request(raw, Settings.from_env(values))
            raw = request.model_dump_json(by_alias=True).encode()
            earlier = already_submitted(values, request.request_id)
            if earlier is not None:
                print(f"gpuprov submit: {request.request_id} was already submitted ({earlier}); "
                      "nothing started. Give the request a new requestId to run it again",
                      file=sys.stderr)  # fmt: skip
                return EXIT_FAILED
        submit(raw, values, args.via)
    except InvalidRequest as invalid:
        return refused(args.file, invalid, "; nothing sent")
    except (FrontDoorError, SettingsError) as exc:
        print(f"gpuprov {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.no_check:
        print(request.request_id)
    return EXIT_OK


def _values(settings_file: Path | None, sandbox: bool, state_dir: Path | None) -> dict[str, str]:
    """Connection settings: a local.settings.json, the sandbox's, or the environment."""
    if sandbox:
        from sandbox import control

        where = state_dir or control.DEFAULT_STATE_DIR
        settings_file = where / control.SETTINGS_FILE
        if not control.status(where):
            raise SettingsError("the sandbox is not running: start it with gpuprov sandbox up")
    if settings_file is None:
        return dict(os.environ)
    return _settings_values(settings_file)


def _run(args: argparse.Namespace) -> int:
    from gpuprov.run import run
    from sandbox.control import SandboxError

    try:
        return run(
            _read(args.file),
            sandbox=args.sandbox,
            json_lines=args.json,
            state_dir=args.state_dir,
            time_scale=args.time_scale,
        )
    except InvalidRequest as invalid:
        return refused(args.file, invalid)
    except (SettingsError, SandboxError) as exc:
        print(f"gpuprov run: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("gpuprov run: interrupted before the run started; it created nothing",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED


def _sandbox(action: str, state_dir: Path | None, time_scale: float) -> int:
    from sandbox import control  # the sandbox is only loaded when asked for

    where = state_dir or control.DEFAULT_STATE_DIR
    try:
        if action == "env":
            print(control.az_env(where), end="")
            return EXIT_OK
        if action == "up":
            _, started = control.up(where, time_scale)
            print("sandbox started" if started else "sandbox already running; nothing started")
        elif action == "down":
            stopped = control.down(where)
            print(f"sandbox stopped (PIDs {', '.join(map(str, stopped))})" if stopped
                  else "sandbox was not running")  # fmt: skip
            return EXIT_OK
    except (control.SandboxError, OSError) as exc:
        print(f"gpuprov sandbox {action}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    endpoints = control.status(where)
    if not endpoints:
        print("sandbox is not running (gpuprov sandbox up starts it)")
        return EXIT_FAILED
    for endpoint in endpoints:
        state = "live" if endpoint.live else "DOWN"
        print(f"{endpoint.name:<11} {endpoint.url:<40} pid {endpoint.pid:<8} {state}")
    print(f"settings: {where / control.ENV_FILE} (source it) and {where / control.SETTINGS_FILE}")
    return EXIT_OK if all(e.live for e in endpoints) else EXIT_FAILED


def _validate(source: str, settings_file: Path | None) -> int:
    try:
        settings = _settings(settings_file)
    except SettingsError as exc:
        print(f"gpuprov: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        request = parse_request(_read(source), settings)
    except InvalidRequest as invalid:
        count = len(invalid.problems)
        return refused(source, invalid, f" ({count} error{'s' * (count != 1)})")
    print(request.model_dump_json(indent=2))
    return EXIT_OK


def refused(source: str, invalid: InvalidRequest, detail: str = "") -> int:
    """The request's problems as JSON on stdout, one line on stderr naming the file: exit 2."""
    print(json.dumps([p.model_dump() for p in invalid.problems], indent=2))
    print(f"gpuprov: {source}: invalid request{detail}", file=sys.stderr)
    return EXIT_INVALID


def _read(source: str) -> bytes:
    """At most one byte more than the limit, so a huge file is refused without reading it all."""
    try:
        if source == "-":
            return sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1)
        with Path(source).open("rb") as file:
            return file.read(MAX_REQUEST_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InvalidRequest(
            [Problem(path="$", message=f"cannot read {source}: {reason}")]
        ) from None


def _settings(settings_file: Path | None) -> Settings:
    if settings_file is None:
        return Settings.from_env(os.environ)
    return Settings.from_env(_settings_values(settings_file))


def _settings_values(settings_file: Path) -> dict[str, str]:
    if not settings_file.is_file():
        raise SettingsError(
            f"{settings_file} does not exist: create it with `cp local.settings.json.template "
            f"{settings_file}` and fill in the connections (docs/settings.md)"
        )
    try:
        values = json.loads(settings_file.read_text(encoding="utf-8"))["Values"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(
            f"cannot read settings from {settings_file}: expected a local.settings.json with a "
            f"'Values' object ({exc})"
        ) from None
    if not isinstance(values, dict):
        raise SettingsError(f"{settings_file}: 'Values' must be an object")
    return {str(k): str(v) for k, v in values.items()}
