"""Settings: one frozen object from the environment, every setting documented and in the template.

Covers: defaults, comma-separated allow-lists, a bad value named in the error, and that
local.settings.json.template and docs/settings.md list exactly the settings the app reads.
"""

from __future__ import annotations

import json

import pytest

from shared.settings import Settings, SettingsError
from tests.conftest import ROOT

HOST_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}


def test_allow_lists_are_comma_separated_and_trimmed() -> None:
    settings = Settings.from_env({"GPUPROV_ALLOWED_LOCATIONS": " eastus, WestEurope ,,"})
    assert settings.allowed_locations == {"eastus", "westeurope"}


def test_unrelated_environment_is_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "HOME": "/root"}) == Settings.from_env({})


@pytest.mark.parametrize(
    ("name", "value"),
    [("GPUPROV_MAX_NODES_PER_REQUEST", "ten"), ("GPUPROV_MAX_TTL_HOURS", "0")],
    ids=["not-a-number", "below-minimum"],
)
def test_a_bad_value_names_the_setting(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_template_lists_every_setting_the_app_reads() -> None:
    template = json.loads((ROOT / "local.settings.json.template").read_text())
    documented = {name for name, _, _ in Settings.documentation()}
    assert set(template["Values"]) == documented | HOST_SETTINGS
    assert template["Values"]["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    defaults = {name: default for name, default, _ in Settings.documentation()}
    assert {k: v for k, v in template["Values"].items() if k in documented} == defaults


def test_docs_describe_every_setting_with_its_default() -> None:
    docs = (ROOT / "docs" / "settings.md").read_text()
    for name, default, description in Settings.documentation():
        assert description
        row = f"| `{name}` | `{default}` | {description} |" if default else f"| `{name}` |"
        assert row in docs, f"docs/settings.md lacks {name} (or its default/description changed)"
    for name in HOST_SETTINGS:
        assert f"`{name}`" in docs
