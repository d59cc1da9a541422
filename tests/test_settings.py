"""Settings: what the README offers operators is what ``Settings`` reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.api.otlp import config_from_settings
from monitor.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
# DRIFTWARDEN_* names in the README that are not daemon settings, with who reads them
NOT_SETTINGS = {
    "DRIFTWARDEN_URL": "the switch CLI and SwitchClient.from_env",
    "DRIFTWARDEN_TOKEN": "the switch CLI, `driftwarden demo` and SwitchClient.from_env",
    "DRIFTWARDEN_TEST_POSTGRES_URL": "the test suite",
    "DRIFTWARDEN_INGEST_TOKEN": "docker-compose.yml (passed on as DRIFTWARDEN_INGEST_TOKENS)",
    "DRIFTWARDEN_READ_TOKEN": "docker-compose.yml (passed on as DRIFTWARDEN_READ_TOKENS)",
    "DRIFTWARDEN_CONTROL_TOKEN": "docker-compose.yml (passed on as DRIFTWARDEN_CONTROL_TOKENS)",
}


def readme_variables() -> set[str]:
    return set(re.findall(r"\bDRIFTWARDEN_[A-Z0-9_]*[A-Z0-9]\b", README.read_text("utf-8")))


def test_the_readme_names_the_otlp_settings() -> None:
    assert {"DRIFTWARDEN_OTLP_SELECT", "DRIFTWARDEN_OTLP_DEFAULT_WORKFLOW"} <= readme_variables()


@pytest.mark.parametrize("variable", sorted(readme_variables() - NOT_SETTINGS.keys()))
def test_every_variable_the_readme_names_is_a_settings_field(variable: str) -> None:
    # Settings ignores unknown DRIFTWARDEN_* variables, so a name missing here is silently
    # dropped in production
    assert variable.removeprefix("DRIFTWARDEN_").lower() in Settings.model_fields


def test_otlp_receiver_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWARDEN_OTLP_SELECT", "all")
    monkeypatch.setenv("DRIFTWARDEN_OTLP_DEFAULT_WORKFLOW", "catch-all")
    monkeypatch.setenv("DRIFTWARDEN_OTLP_WORKFLOW_RESOURCE_ATTRIBUTE", "")
    monkeypatch.setenv("DRIFTWARDEN_OTLP_COST_FROM_AGGREGATE_SPANS", "true")
    monkeypatch.setenv("DRIFTWARDEN_OTLP_MAX_BODY_BYTES", "1000")
    monkeypatch.setenv("DRIFTWARDEN_OTLP_CONCURRENCY", "3")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]  # an init-only option of pydantic-settings
    config = config_from_settings(settings)
    options = config.options
    assert (options.select, options.default_workflow) == ("all", "catch-all")
    assert (options.workflow_resource_attribute, options.cost_from_aggregate_spans) == ("", True)
    assert (config.max_body_bytes, config.concurrency) == (1000, 3)


def test_a_bad_otlp_setting_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWARDEN_OTLP_SELECT", "everything")
    with pytest.raises(ValueError, match="otlp_select"):
        Settings(_env_file=None)  # type: ignore[call-arg]  # an init-only option of pydantic-settings
