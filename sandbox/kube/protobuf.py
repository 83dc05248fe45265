"""Decode Kubernetes protobuf request bodies (kubectl's typed clients send them).

kubectl 1.32 sends `kubectl create namespace` and `kubectl auth can-i` as
`application/vnd.kubernetes.protobuf` and does not fall back to JSON on 415. The body is the
`k8s\\x00` magic, then a runtime.Unknown whose `raw` is the object's message, encoded as described
by the API's generated.proto files (vendored under proto/, comments removed). Field names there
are the JSON names, so decoding yields the object's JSON form. Zero values are dropped, as the
Go structs' `omitempty` JSON would drop them.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_PROTO_DIR = Path(__file__).with_name("proto")
_FIELD = re.compile(
    r"^\s*(?:(?P<label>optional|repeated)\s+(?P<type>[\w.]+)|map<(?P<key>\w+),\s*(?P<value>[\w.]+)>)"
    r"\s+(?P<name>\w+)\s*=\s*(?P<number>\d+)\s*;"
)
_GROUP_PACKAGES = {
    "": "k8s.io.api.core",
    "batch": "k8s.io.api.batch",
    "apps": "k8s.io.api.apps",
    "authorization.k8s.io": "k8s.io.api.authorization",
    "coordination.k8s.io": "k8s.io.api.coordination",
}


class ProtobufError(ValueError):
    """A body that is not a Kubernetes protobuf message of a known kind."""


@dataclass(frozen=True)
class _Field:
    name: str
    type: str
    repeated: bool
    map_value: str = ""


@functools.cache
def _messages() -> dict[str, dict[int, _Field]]:
    """Every message of the vendored protos, by full name, as field number → field."""
    messages: dict[str, dict[int, _Field]] = {}
    for path in sorted(_PROTO_DIR.glob("*.proto")):
        package = ""
        current: dict[int, _Field] | None = None
        for line in path.read_text().splitlines():
            if line.startswith("package "):
                package = line.split()[1].rstrip(";")
            elif line.startswith("message "):
                current = messages.setdefault(f"{package}.{line.split()[1]}", {})
            elif line.startswith("}"):
                current = None
            elif current is not None and (match := _FIELD.match(line)):
                value = match["value"]
                kind = _qualify(value or match["type"], package)
                current[int(match["number"])] = _Field(
                    match["name"],
                    kind if not value else "map",
                    match["label"] == "repeated" or bool(value),
                    kind if value else "",
                )
    return messages


def _qualify(kind: str, package: str) -> str:
    if kind.startswith("."):
        return kind[1:]
    if kind in _SCALARS:
        return kind
    return f"{package}.{kind}"


_SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float"}


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, position


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(number, wire type, raw value) in wire order."""
    position, found = 0, []
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, position = _read_varint(data, position)
        elif wire == 2:
            length, position = _read_varint(data, position)
            value, position = data[position : position + length], position + length
        elif wire == 1:
            value, position = data[position : position + 8], position + 8
        elif wire == 5:
            value, position = data[position : position + 4], position + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        found.append((number, wire, value))
    return found


def _scalar(kind: str, value: Any) -> Any:
    if kind == "string":
        return bytes(value).decode()
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "bool":
        return bool(value)
    if kind in ("int32", "int64"):
        return value - (1 << 64) if value >= 1 << 63 else value
    return value


def _special(name: str, data: bytes) -> tuple[bool, Any]:
    """Types whose JSON form is not their message (time, quantity, int-or-string, raw JSON)."""
    short = name.rsplit(".", 1)[-1]
    if short in ("Time", "MicroTime"):
        seconds = _decode(name, data).get("seconds", 0)
        if not seconds:
            return True, None  # the zero time is null in JSON
        return True, datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if short in ("Quantity", "QuantityValue"):
        return True, _decode(name, data).get("string", "")
    if short == "IntOrString":
        decoded = _decode(name, data)
        return True, decoded.get("strVal", "") if decoded.get("type") else decoded.get("intVal", 0)
    if short in ("RawExtension", "FieldsV1"):
        raw = next((bytes(v) for n, _, v in _fields(data) if n == 1), b"")
        return True, json.loads(raw) if raw else None
    return False, None


def _decode(name: str, data: bytes) -> dict[str, Any]:
    message = _messages().get(name)
    if message is None:
        raise ProtobufError(f"unknown message {name}")
    result: dict[str, Any] = {}
    for number, _, raw in _fields(data):
        field = message.get(number)
        if field is None:
            continue
        if field.type == "map":
            entry = _fields(raw)
            key = next((bytes(v).decode() for n, _, v in entry if n == 1), "")
            value = next((v for n, _, v in entry if n == 2), b"")
            result.setdefault(field.name, {})[key] = _value(field.map_value, value)
            continue
        value = _value(field.type, raw)
        if field.repeated:
            result.setdefault(field.name, []).append(value)
        else:
            result[field.name] = value
    return {
        key: value for key, value in result.items() if value not in ("", 0, False, None, {}, [])
    }


def _value(kind: str, raw: Any) -> Any:
    if kind in _SCALARS:
        return _scalar(kind, raw)
    special, value = _special(kind, bytes(raw))
    return value if special else _decode(kind, bytes(raw))


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object (apiVersion and kind from its envelope)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic")
    envelope = _decode("k8s.io.apimachinery.pkg.runtime.Unknown", body[len(MAGIC) :])
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    group, _, version = api_version.rpartition("/")
    package = _GROUP_PACKAGES.get(group)
    if package is None or not kind:
        raise ProtobufError(f"no protobuf message for {api_version} {kind}")
    raw = base64.b64decode(envelope.get("raw", ""))
    return {"apiVersion": api_version, "kind": kind, **_decode(f"{package}.{version}.{kind}", raw)}
