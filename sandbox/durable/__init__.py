"""A local Durable Functions host: the real `azure-functions-durable` replay engine, in memory or
with its state in a file that a restarted host resumes from."""

from sandbox.durable.host import (
    InstanceExistsError,
    InstanceStatus,
    LocalDurableHost,
    NonDeterminismError,
)
from sandbox.durable.indexing import Activity, FunctionIndex, index_app

__all__ = [
    "Activity",
    "FunctionIndex",
    "InstanceExistsError",
    "InstanceStatus",
    "LocalDurableHost",
    "NonDeterminismError",
    "index_app",
]
