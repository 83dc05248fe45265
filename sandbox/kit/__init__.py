"""The simulator kit: what every HTTP simulator of the sandbox is made of.

One request/response shape, one router, one HTTPS server (TLS from `sandbox.tls`), one kind of
fault rule and one request recorder, so a simulator only supplies its routes and its state
(the shape moto gives each AWS service: urls, responses, models).
"""

from sandbox.kit.faults import FaultRule, FaultRules
from sandbox.kit.http import Request, Response
from sandbox.kit.recorder import RecordedRequest, RequestRecorder
from sandbox.kit.router import Router
from sandbox.kit.server import SimulatorServer

__all__ = [
    "FaultRule",
    "FaultRules",
    "RecordedRequest",
    "Request",
    "RequestRecorder",
    "Response",
    "Router",
    "SimulatorServer",
]
