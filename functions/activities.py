"""The activities as the Functions host indexes them: one per step operation, plus publishing.

Each is registered under the name of its implementation in functions/steps.py, which is
imported on the first activity call rather than at app start: a cold start does not pay for
the request models and the SDKs.
"""

from typing import Any

import azure.durable_functions as df
import azure.functions  # noqa: F401 - with it, mypy resolves the azure namespace package

bp = df.Blueprint()

ACTIVITIES = (
    "register_features",
    "start_create_cluster",
    "start_create_node_pool",
    "start_delete_node_pool",
    "start_delete_cluster",
    "check_operation",
    "install_device_plugin",
    "check_device_plugin",
    "check_gpus",
    "start_job",
    "check_job",
    "collect_job_log",
    "delete_job",
    "publish_event",
)


def _register(name: str) -> None:
    def activity(payload: Any) -> Any:
        from functions import steps

        return getattr(steps, name)(payload)

    activity.__name__ = activity.__qualname__ = name
    activity.__doc__ = f"The {name} activity (functions/steps.py)."
    bp.activity_trigger(input_name="payload")(activity)


for _name in ACTIVITIES:
    _register(_name)
