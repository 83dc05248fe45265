"""Every activity, as the Functions host indexes them.

Importing the modules that define activities registers them (`@activity`, functions/registry.py):
the run's reports (`publish_events`, `remember_durations`), the ARM operation check, and each
module of functions/steps/, found on disk, so a new step module needs no line here.
"""

import importlib
import pkgutil

from functions import operation, reports, steps
from functions.registry import ACTIVITIES, bp

for _module in pkgutil.iter_modules(steps.__path__):
    importlib.import_module(f"{steps.__name__}.{_module.name}")

__all__ = ["ACTIVITIES", "bp", "operation", "reports"]
