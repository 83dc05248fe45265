"""What is wrong with an input, said where (a JSONPath into the request) and how to fix it."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Problem(BaseModel):
    """One error in a request: `path` is a JSONPath ($ is the whole document)."""

    model_config = ConfigDict(frozen=True)

    path: str
    message: str


class InvalidRequest(ValueError):
    """The request cannot be accepted; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))


def json_path(*parts: str | int) -> str:
    """`json_path("nodePool", "labels", "a/b")` → `$.nodePool.labels['a/b']`; indexes as `[0]`."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}"
        else:
            path += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return path
