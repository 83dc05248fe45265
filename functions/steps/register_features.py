"""register-features: register each requested preview feature, poll until `Registered`, then
register its resource provider again (skipped when the request asks for none)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict

from functions.activity import dump, on_arm
from functions.engine import Run, StepFailed, Steps, fail_on_error
from functions.registry import activity

if TYPE_CHECKING:
    from shared.arm import ArmAdapter
    from shared.events import StepName
    from shared.request import ProvisionRequest
    from shared.sequence import StepAnswer

STEP: StepName = "register-features"


class Previous(TypedDict):
    """The last check's answer (a FeatureRegistration as JSON; None at first)."""

    previous: dict[str, Any] | None


@activity
def register_features(payload: Any) -> dict[str, Any]:
    def register(arm: ArmAdapter, request: ProvisionRequest, data: Previous) -> StepAnswer:
        from shared.arm import FeatureRegistration
        from shared.sequence import StepAnswer

        previous = data["previous"]
        report = arm.register_features(
            request.subscription_id,
            request.preview_features,
            FeatureRegistration.model_validate(previous) if previous else None,
        )
        return StepAnswer(value=dump(report), done=report.done)

    return on_arm(payload, Previous, register)


def orchestrate(run: Run) -> Steps:
    if not run.request.preview_features:
        return {"skipped": True, "message": "no preview feature requested"}
    answer = yield from run.wait(
        register_features, run.options.feature_minutes, {"previous": None}, carry="previous"
    )
    fail_on_error(STEP, answer)
    if not answer.done:
        raise StepFailed(STEP, "preview features did not register in time")
    return {"features": answer.value}
