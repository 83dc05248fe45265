"""Routes: (methods, path regex) → handler, tried in the order they were added."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.kit.http import Request, Response

Handler = Callable[[Request, dict[str, str]], Response]
"""Called with the request and the path regex's named groups."""


@dataclass(frozen=True)
class _Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        """`methods` is space-separated ("GET POST") or "*"; `pattern` must match the whole path."""
        self._routes.append(_Route(frozenset(methods.split()), re.compile(pattern), handler))

    def dispatch(self, request: Request) -> Response | None:
        """The first matching route's response; None when no route matches the path."""
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match and ("*" in route.methods or request.method in route.methods):
                groups = {k: v for k, v in match.groupdict().items() if v is not None}
                return route.handler(request, groups)
        return None
