"""Fault rules: answer the next N matching requests with a fault instead of serving them."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class FaultRule:
    method: str
    """An HTTP method or "*"."""
    path: re.Pattern[str]
    """Searched in the request path."""
    remaining: int
    outcome: Any
    """What the simulator answers instead (a status code, or a simulator-specific word)."""
    scope: str | None = None
    """Only requests in this scope (e.g. one cluster) when set."""


class FaultRules:
    """Thread-safe list of rules; each matching request uses up one answer of the first rule."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(
        self, method: str, path_regex: str, count: int, outcome: Any, scope: str | None = None
    ) -> None:
        rule = FaultRule(method.upper(), re.compile(path_regex), count, outcome, scope)
        with self._lock:
            self._rules.append(rule)

    def take(
        self,
        method: str,
        path: str,
        scope: str | None = None,
        applies: Callable[[Any], bool] = lambda _: True,
    ) -> FaultRule | None:
        """The rule answering this request (its count used up by one), or None."""
        with self._lock:
            for rule in self._rules:
                if (
                    rule.remaining > 0
                    and rule.method in ("*", method)
                    and rule.scope in (None, scope)
                    and rule.path.search(path)
                    and applies(rule.outcome)
                ):
                    rule.remaining -= 1
                    return rule
        return None

    def left(self) -> int:
        """How many fault answers have not been given yet."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)
