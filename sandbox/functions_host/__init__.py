"""A local Azure Functions host: runs an app's queue, Service Bus, timer, HTTP, durable triggers."""

from sandbox.functions_host.config import FunctionsHostError, HostSettings, QueueOptions
from sandbox.functions_host.host import LocalFunctionsHost
from sandbox.functions_host.worker import Invocation

__all__ = ["FunctionsHostError", "HostSettings", "Invocation", "LocalFunctionsHost", "QueueOptions"]
