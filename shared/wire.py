"""The JSON shapes that cross a boundary: requests coming in, step results going into history.

camelCase on the wire, unknown fields rejected, no type coercion, immutable once parsed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """What arrives from outside (the request): accepted only in its camelCase wire form."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
        frozen=True,
        use_attribute_docstrings=True,
        field_title_generator=lambda name, _: to_camel(name),
    )


class HistoryModel(WireModel):
    """What a step returns into orchestration history: the same wire form, and built by field
    name in code."""

    model_config = ConfigDict(validate_by_name=True)
