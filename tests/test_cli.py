"""`gpuprov validate` as a user runs it: the installed command in a subprocess.

Covers: exit 0 with the normalised request; exit 2 with a JSON list of {path, message} for bad
files (unreadable, not UTF-8, empty, huge, malformed, out of policy); standard input; policy taken
from a local.settings.json; never a traceback.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from shared.validation import MAX_REQUEST_BYTES
from tests.conftest import EXAMPLES, GPUPROV

SEED = next(p for p in EXAMPLES if p.stem == "seed-walkthrough")


def gpuprov(
    *args: str, stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed command; whatever happens, it must not print a traceback."""
    result = subprocess.run(
        [GPUPROV, *args], input=stdin, capture_output=True, env=env, check=False, timeout=30
    )
    assert b"Traceback" not in result.stderr + result.stdout
    return result


def test_valid_file_prints_the_normalised_request() -> None:
    result = gpuprov("validate", str(SEED))
    assert result.returncode == 0, result.stderr
    request = json.loads(result.stdout)
    assert request["requestId"] == "seed-walkthrough-001"
    assert request["cleanup"]["deleteCluster"] is True
    assert request["devicePlugin"]["image"] == "nvcr.io/nvidia/k8s-device-plugin:v0.18.0"


def test_standard_input() -> None:
    result = gpuprov("validate", "-", stdin=SEED.read_bytes())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["location"] == "eastus"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param(b"\xc3\x28", "not UTF-8", id="not-utf8"),
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"{" * (MAX_REQUEST_BYTES + 10), "the limit is 65536", id="huge"),
        pytest.param(b'{"apiVersion": ', "not valid JSON", id="malformed"),
        pytest.param(b'{"apiVersion": "gpuprov/v1", "oops": 1}', "unknown field 'oops'",
                     id="unknown-field"),
    ],
)  # fmt: skip
def test_bad_files_exit_2_with_json_errors(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "request.json"
    path.write_bytes(content)
    result = gpuprov("validate", str(path))
    assert result.returncode == 2
    errors = json.loads(result.stdout)
    assert all(set(error) == {"path", "message"} for error in errors)
    assert any(fragment in error["message"] for error in errors), errors
    assert b"invalid request" in result.stderr


def test_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = gpuprov("validate", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert "No such file" in json.loads(result.stdout)[0]["message"]


def test_directory_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = gpuprov("validate", str(tmp_path))
    assert result.returncode == 2
    assert "cannot read" in json.loads(result.stdout)[0]["message"]


def test_policy_from_a_local_settings_file(tmp_path: Path) -> None:
    local = tmp_path / "local.settings.json"
    local.write_text(json.dumps({"Values": {"GPUPROV_ALLOWED_LOCATIONS": "westeurope"}}))
    result = gpuprov("validate", str(SEED), "--settings", str(local))
    assert result.returncode == 2
    [error] = json.loads(result.stdout)
    assert error["path"] == "$.location"
    assert "westeurope" in error["message"]


def test_policy_from_the_environment() -> None:
    env = {"GPUPROV_MAX_TTL_HOURS": "1", "PATH": "/usr/bin:/bin"}
    result = gpuprov("validate", str(SEED), env=env)
    assert result.returncode == 2
    assert json.loads(result.stdout)[0]["path"] == "$.cleanup.ttlHours"


def test_bad_settings_are_named_and_exit_1() -> None:
    env = {"GPUPROV_MAX_NODES_PER_REQUEST": "many", "PATH": "/usr/bin:/bin"}
    result = gpuprov("validate", str(SEED), env=env)
    assert result.returncode == 1
    assert b"GPUPROV_MAX_NODES_PER_REQUEST" in result.stderr


def test_schema_command_prints_the_committed_schema() -> None:
    result = gpuprov("schema")
    assert result.returncode == 0
    committed = (SEED.parent.parent / "schemas" / "provision-request.schema.json").read_text()
    assert json.loads(result.stdout) == json.loads(committed)


@pytest.mark.parametrize(
    "command", [["schema"], ["validate", str(SEED)]], ids=["schema", "validate"]
)
def test_a_reader_that_stops_early_gets_no_traceback(command: list[str]) -> None:
    """`gpuprov validate FILE | head`: the reader is gone before the output is written."""
    process = subprocess.Popen([GPUPROV, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=30)
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err


def test_a_missing_settings_file_says_how_to_make_it(tmp_path: Path) -> None:
    missing = tmp_path / "local.settings.json"
    result = gpuprov("validate", str(SEED), "--settings", str(missing))
    assert result.returncode == 1
    message = result.stderr.decode()
    assert f"{missing} does not exist" in message
    assert "cp local.settings.json.template" in message
    assert "'Values' object" not in message


@pytest.mark.parametrize(
    "command", ["schema", "run", "demo", "host", "reap", "watch", "sandbox kubeconfig"]
)
def test_every_command_and_option_has_help(command: str) -> None:
    text = gpuprov(*command.split(), "--help").stdout.decode()
    head, _, options = text.partition("\noptions:\n")
    usage = head.split("\npositional arguments:\n")[0]
    assert len(usage.strip().split("\n\n")) >= 2, f"no description:\n{text}"
    lines = options.splitlines()
    bare = []
    for number, line in enumerate(lines):
        if not line.startswith("  -") or line.startswith("  -h,"):
            continue
        said_here = len(line.strip().split("  ", 1)) > 1
        said_next = number + 1 < len(lines) and lines[number + 1].startswith(" " * 20)
        if not (said_here or said_next):
            bare.append(line.strip())
    assert bare == [], text
