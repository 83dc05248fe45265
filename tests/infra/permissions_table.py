"""docs/deploy.md's permissions table, rendered from infra/permissions.json.

`.venv/bin/python -m tests.infra.permissions_table` rewrites the table between its markers;
tests/infra/test_permissions.py fails while the two differ.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "infra" / "permissions.json"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
BEGIN = "<!-- permissions table: generated from infra/permissions.json -->"
END = "<!-- end of permissions table -->"


def render(manifest: dict[str, Any]) -> str:
    """Built-in roles first, a row per data action under each, then each custom role's
    actions."""
    rows = ["| role | scope | actions | why |", "|---|---|---|---|"]
    for role in manifest["builtInRoles"]:
        name, scope, why = role["role"], role["scope"], role["for"]
        rows.append(f"| {name} (built-in `{role['id']}`) | {scope} | data actions: | {why} |")
        rows.extend(
            f"|  |  | `{entry['dataAction']}` | {entry['for']} |" for entry in role["dataActions"]
        )
    for role in manifest["customRoles"].values():
        for i, entry in enumerate(role["actions"]):
            name = f'custom "{role["roleName"]}"' if i == 0 else ""
            scope = role["scope"] if i == 0 else ""
            rows.append(f"| {name} | {scope} | `{entry['action']}` | {entry['for']} |")
    return "\n".join(rows)


def _block(text: str) -> re.Match[str]:
    match = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.DOTALL)
    if match is None:
        raise ValueError(f"{DEPLOY_DOC.name} has no {BEGIN!r} … {END!r} block")
    return match


def table_in(text: str) -> str:
    return _block(text).group(1)


def main() -> None:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    table = render(json.loads(MANIFEST.read_text(encoding="utf-8")))
    block = _block(text)
    text = text[: block.start(1)] + table + text[block.end(1) :]
    DEPLOY_DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
