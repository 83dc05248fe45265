"""`gpuprov`: the provisioner's command line.

Exit codes: 0 success, 1 the command could not do its work (e.g. bad settings), 2 invalid input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.problems import InvalidRequest, Problem
from shared.request import json_schema
from shared.settings import Settings, SettingsError
from shared.validation import MAX_REQUEST_BYTES, parse_request

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
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
    commands.add_parser("schema", help="print the request's JSON Schema")

    run = commands.add_parser(
        "run",
        help="run a request's whole sequence in this process (exit 0 completed, 1 failed, "
        "2 invalid)",
    )
    run.add_argument("file", help="request JSON file, or - for standard input")
    run.add_argument(
        "--sandbox", action="store_true", help="against the local sandbox (started if needed)"
    )
    run.add_argument("--json", action="store_true", help="one CloudEvent JSON line per event")
    run.add_argument("--state-dir", type=Path, default=None, help="the sandbox's state directory")
    run.add_argument("--time-scale", type=float, default=60.0, help="sandbox speed-up (default 60)")

    sandbox = commands.add_parser(
        "sandbox", help="start, inspect or stop the local sandbox (simulated Azure on 127.0.0.1)"
    )
    sandbox.add_argument(
        "action", choices=["up", "status", "down"], help="up: start it; status; down: stop it"
    )
    sandbox.add_argument(
        "--state-dir", type=Path, default=None, help="where ports, PIDs and the CA are kept"
    )
    sandbox.add_argument(
        "--time-scale",
        type=float,
        default=60.0,
        help="simulated seconds per real second for cloud operations (default 60)",
    )

    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return EXIT_OK
    if args.command == "sandbox":
        return _sandbox(args.action, args.state_dir, args.time_scale)
    if args.command == "run":
        return _run(args)
    return _validate(args.file, args.settings)


def _run(args: argparse.Namespace) -> int:
    from gpuprov.run import run

    try:
        return run(
            _read(args.file),
            sandbox=args.sandbox,
            json_lines=args.json,
            state_dir=args.state_dir,
            time_scale=args.time_scale,
        )
    except InvalidRequest as invalid:
        print(json.dumps([p.model_dump() for p in invalid.problems], indent=2))
        print(f"gpuprov: {args.file}: invalid request", file=sys.stderr)
        return EXIT_INVALID
    except SettingsError as exc:
        print(f"gpuprov: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _sandbox(action: str, state_dir: Path | None, time_scale: float) -> int:
    from sandbox import control  # the sandbox is only loaded when asked for

    where = state_dir or control.DEFAULT_STATE_DIR
    try:
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
        print(json.dumps([p.model_dump() for p in invalid.problems], indent=2))
        count = len(invalid.problems)
        print(f"gpuprov: {source}: invalid request ({count} error{'s' * (count != 1)})",
              file=sys.stderr)  # fmt: skip
        return EXIT_INVALID
    print(request.model_dump_json(indent=2))
    return EXIT_OK


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
    try:
        values = json.loads(settings_file.read_text(encoding="utf-8"))["Values"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(
            f"cannot read settings from {settings_file}: expected a local.settings.json with a "
            f"'Values' object ({exc})"
        ) from None
    if not isinstance(values, dict):
        raise SettingsError(f"{settings_file}: 'Values' must be an object")
    return Settings.from_env({str(k): str(v) for k, v in values.items()})
