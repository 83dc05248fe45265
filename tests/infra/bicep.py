"""A small reader for the Bicep in infra/: enough to find resources and read their bodies.

Values come back as what they are in the source: objects as dicts, arrays as lists, strings
unquoted, and any other expression as its text (`storage.name`, `string(maxTtlHours)`), so tests
compare the wiring itself rather than a guess at what ARM would compute. No bicep CLI needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BicepValue = dict[str, "BicepValue"] | list["BicepValue"] | str
_OPENERS = {"{": "}", "[": "]", "(": ")"}
_RESOURCE = re.compile(r"^resource (\w+) '([^'@]+)@[^']+'( existing)? = ", re.MULTILINE)


class BicepSyntaxError(ValueError):
    """The reader met something it does not understand: the test must not guess."""


@dataclass(frozen=True)
class Resource:
    """One `resource` declaration: its symbolic name, type and body."""

    symbol: str
    type: str
    body: dict[str, BicepValue]


def _skip_string(text: str, i: int) -> int:
    """Index just after the string starting at text[i] (a quote), interpolations included."""
    if text.startswith("'''", i):
        end = text.find("'''", i + 3)
        if end < 0:
            raise BicepSyntaxError(f"unterminated multi-line string at {i}")
        return end + 3
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
        elif char == "'":
            return i + 1
        elif text.startswith("${", i):
            i = _skip_balanced(text, i + 1)
        else:
            i += 1
    raise BicepSyntaxError("unterminated string")


def _skip_comment(text: str, i: int) -> int:
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    end = text.find("*/", i + 2)
    if end < 0:
        raise BicepSyntaxError(f"unterminated comment at {i}")
    return end + 2


def _skip_balanced(text: str, i: int) -> int:
    """Index just after the bracket that closes the one at text[i]."""
    closers = [_OPENERS[text[i]]]
    i += 1
    while i < len(text):
        char = text[i]
        if char == "'":
            i = _skip_string(text, i)
            continue
        if text.startswith(("//", "/*"), i):
            i = _skip_comment(text, i)
            continue
        if char in _OPENERS:
            closers.append(_OPENERS[char])
        elif char in "}])":
            if char != closers.pop():
                raise BicepSyntaxError(f"mismatched {char!r} at {i}")
            if not closers:
                return i + 1
        i += 1
    raise BicepSyntaxError("unbalanced brackets")


def _split_top_level(body: str) -> list[str]:
    """Items of an object or array body: separated by newlines or commas outside brackets."""
    items: list[str] = []
    start = i = 0
    while i < len(body):
        char = body[i]
        if char == "'":
            i = _skip_string(body, i)
        elif body.startswith(("//", "/*"), i):
            end = _skip_comment(body, i)
            body = body[:i] + " " * (end - i) + body[end:]
            i = end
        elif char in _OPENERS:
            i = _skip_balanced(body, i)
        elif char in ",\n":
            items.append(body[start:i])
            start = i = i + 1
        else:
            i += 1
    items.append(body[start:])
    return [item.strip() for item in items if item.strip()]


def parse_value(source: str) -> BicepValue:
    """An object, array or plain string literal parsed; any other expression as its text."""
    source = source.strip()
    if source.startswith("{") and _skip_balanced(source, 0) == len(source):
        entries: dict[str, BicepValue] = {}
        for item in _split_top_level(source[1:-1]):
            key, colon, value = item.partition(":")
            if not colon:
                raise BicepSyntaxError(f"object entry without a key: {item!r}")
            entries[key.strip().strip("'")] = parse_value(value)
        return entries
    if source.startswith("[") and _skip_balanced(source, 0) == len(source):
        if re.match(r"\[\s*for\b", source):
            return source  # a loop: kept as its text
        return [parse_value(item) for item in _split_top_level(source[1:-1])]
    if (
        source.startswith("'")
        and not source.startswith("'''")
        and _skip_string(source, 0) == len(source)
        and "${" not in source
    ):
        return source[1:-1].replace("\\'", "'")
    return source


def resources(text: str) -> list[Resource]:
    """Every resource declared in a Bicep file, with its body (a loop's or condition's body)."""
    found = []
    for match in _RESOURCE.finditer(text):
        start = text.index("{", match.end())
        end = _skip_balanced(text, start)
        body = parse_value(text[start:end])
        if not isinstance(body, dict):
            raise BicepSyntaxError(f"resource {match.group(1)} has no object body")
        found.append(Resource(match.group(1), match.group(2), body))
    return found


def variable(text: str, name: str) -> BicepValue:
    """The value of `var <name> = ...` (a one-line expression or a bracketed literal)."""
    match = re.search(rf"^var {name} = ", text, re.MULTILINE)
    if match is None:
        raise BicepSyntaxError(f"no var {name}")
    start = match.end()
    if text[start] in "{[":
        return parse_value(text[start : _skip_balanced(text, start)])
    return parse_value(text[start : text.index("\n", start)])


def target_scope(text: str) -> str:
    """The file's targetScope (resourceGroup unless it says otherwise)."""
    match = re.search(r"^targetScope = '(\w+)'", text, re.MULTILINE)
    return match.group(1) if match else "resourceGroup"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")
