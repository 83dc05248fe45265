"""Azure Resource Manager: one module per resource kind over one reconcile routine.

- `reconcile`: the routine (GET → ownership → matches → PUT, or DELETE with 404 done);
- `cluster`, `pool`: the resources (where, body, SDK calls); `compare`: the diff;
- `features`: preview-feature registration; `operations`: polling a started operation;
- `access`: cluster credentials; `handles`: what crosses into history; `adapter`: the clients.

Only activities import this package, so its SDK imports cost nothing at app start.
"""

from shared.arm.adapter import ArmAdapter
from shared.arm.features import FeatureRegistration
from shared.arm.handles import OperationHandle, OperationStatus

__all__ = ["ArmAdapter", "FeatureRegistration", "OperationHandle", "OperationStatus"]
