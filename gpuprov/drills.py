"""`gpuprov sandbox fault NAME | --list`: inject a failure drill into the running sandbox.

The faults are the simulators' (sandbox/kube/drills.py); this asks the running sandbox's
Kubernetes simulator to arm one, over HTTPS with the sandbox's CA and token.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from sandbox import control
from sandbox.kube.drills import BY_NAME, DRILLS, UnknownDrill
from sandbox.world import SANDBOX_TOKEN


def print_list(out: TextIO) -> None:
    width = max(len(d.name) for d in DRILLS)
    for drill in DRILLS:
        print(f"{drill.name:<{width}}  {drill.target:<10}  {drill.effect}", file=out)
        print(f"{'':<{width}}  {'':<10}  see: {drill.expected}", file=out)


def inject(state_dir: Path, name: str, out: TextIO) -> None:
    """Arm one drill in the running sandbox; raises SandboxError with what to do."""
    if name not in BY_NAME:
        raise control.SandboxError(str(UnknownDrill(name)))
    state = control.read_state(state_dir)
    if not state or not control.status(state_dir):
        raise control.SandboxError("the sandbox is not running: start it with gpuprov sandbox up")
    url = f"{state['endpoints']['kubernetes']['url']}/drills/{name}"
    request = urllib.request.Request(  # noqa: S310 - https to our own sandbox
        url,
        method="POST",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
    )
    context = ssl.create_default_context(cafile=state["ca"])
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:  # noqa: S310
            body = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        message = json.loads(error.read() or b"{}").get("message", error.reason)
        raise control.SandboxError(message) from None
    except (urllib.error.URLError, OSError) as error:
        raise control.SandboxError(f"the sandbox did not answer ({error})") from None
    print(f"injected {body['injected']}: {body['effect']}", file=out)
    print(f"see: {body['expected']}", file=out)
