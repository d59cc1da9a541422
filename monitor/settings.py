"""All configuration in one place: environment (``DRIFTWARDEN_*``), ``.env`` and a TOML file.

The environment carries deployment settings (where to listen, which database, tokens);
the TOML file named by ``DRIFTWARDEN_CONFIG`` carries what belongs to the workflows:
baselines, budgets, SLOs, policies, notification webhooks, files to tail.

Every variable, its meaning and default is listed on ``Settings``; the README's
configuration reference is generated from the same docstrings.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from collectors.events import WORKFLOW_PATTERN

Mode = Literal["auto", "review", "manual"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkflowConfig(_Strict):
    """``[workflows.<name>]``: what is expected of one workflow."""

    baseline: dict[str, float] = Field(
        default_factory=dict,
        description="declared baselines per signal, e.g. {edited = 0.18, groundedness = 0.9}",
    )
    baseline_sd: dict[str, float] = Field(
        default_factory=dict,
        description="per-observation sd for declared value baselines, e.g. {groundedness = 0.1}",
    )
    baseline_window: str | None = Field(
        default=None, description='learn baselines from "START/END" (RFC 3339 dates)'
    )
    relearn_on_version_change: bool = Field(
        default=False,
        description="drop the baselines and learn afresh when model_version/prompt_version "
        "change (default: watch the new version against the previous version's baseline "
        "while its own is learned, so a drop that comes with the version is caught)",
    )
    false_alarms_per_month: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="false critical findings per 30 days this workflow accepts, across all its "
        "signals (default: DRIFTWARDEN_FALSE_ALARMS_PER_WORKFLOW_MONTH)",
    )
    monthly_budget_usd: float | None = Field(default=None, ge=0)
    slo_success: float = Field(default=0.99, gt=0, lt=1, description="success-ratio SLO")
    default_mode: Mode | None = None

    @field_validator("baseline_window")
    @classmethod
    def _window_has_two_ends(cls, value: str | None) -> str | None:
        if value is not None and value.count("/") != 1:
            raise ValueError('must look like "2026-10-01/2026-10-14"')
        return value


def _critical_only() -> list[Literal["warn", "critical", "unknown"]]:
    return ["critical"]


class PolicyConfig(_Strict):
    """``[[policies]]``: when a finding or an alert trips a switch."""

    name: str = Field(min_length=1, max_length=128)
    workflow: str = Field(default="*", description="glob over workflow names")
    signal: str = Field(default="*", description="glob over signal names")
    detector: str = Field(default="*", description="glob over detector names")
    status: list[Literal["warn", "critical", "unknown"]] = Field(default_factory=_critical_only)
    alertname: str | None = Field(default=None, description="match Alertmanager alerts by name")
    consecutive: int = Field(default=1, ge=1, le=1000, description="passes the match must hold")
    mode: Literal["review", "manual"] | None = None
    disable: list[str] = Field(default_factory=list)
    dry_run: bool = False
    notify: bool = True

    @field_validator("disable")
    @classmethod
    def _actions_are_names(cls, value: list[str]) -> list[str]:
        for action in value:
            if (
                not action
                or len(action) > 64
                or not action.replace("_", "").replace("-", "").isalnum()
            ):
                raise ValueError(f"{action!r} is not an action name like crm_write")
        return value

    @model_validator(mode="after")
    def _has_an_action(self) -> PolicyConfig:
        if self.mode is None and not self.disable:
            raise ValueError("a policy needs `mode` (review|manual) or `disable` (actions)")
        return self


class TailConfig(_Strict):
    path: str = Field(min_length=1)
    format: str = "native"


WorkflowName = Annotated[str, StringConstraints(pattern=WORKFLOW_PATTERN)]


class FileConfig(_Strict):
    """The TOML config file."""

    workflows: dict[WorkflowName, WorkflowConfig] = Field(default_factory=dict)
    policies: list[PolicyConfig] = Field(default_factory=list)
    notify_webhooks: list[str] = Field(default_factory=list)
    tail: list[TailConfig] = Field(default_factory=list)
    default_mode: Mode = "auto"


CommaList = Annotated[list[str], NoDecode]
OTLP_MAX_BODY_BYTES: Final = 16 * 1024 * 1024


class Settings(BaseSettings):
    """Deployment settings. Environment variables are ``DRIFTWARDEN_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTWARDEN_", env_file=".env", extra="ignore", validate_default=True
    )

    database_url: str = Field(default="sqlite:///./driftwarden.db", description="SQLAlchemy URL")
    config: Path | None = Field(default=None, description="path to the TOML config file")
    host: str = Field(default="127.0.0.1", description="listen address")
    port: int = Field(default=8000, ge=0, le=65535, description="listen port")
    ingest_tokens: CommaList = Field(default_factory=list, description="bearer tokens: ingest")
    read_tokens: CommaList = Field(default_factory=list, description="bearer tokens: read")
    control_tokens: CommaList = Field(
        default_factory=list, description="bearer tokens: control (implies read)"
    )
    console_secret: str | None = Field(
        default=None,
        description="key that signs web console sessions (default: derived from the tokens, "
        "so every replica agrees and changing a token signs everyone out)",
    )
    detect_interval: float = Field(default=30.0, gt=0, description="seconds between passes")
    false_alarms_per_workflow_month: float = Field(
        default=0.1,
        gt=0,
        le=100,
        description="expected false CRITICAL findings per workflow per 30 days, across all its "
        "signals; each chart's threshold is derived from it, its observation rate and the "
        "number of charts",
    )
    warn_false_alarms_per_workflow_month: float = Field(
        default=2.0,
        gt=0,
        le=1000,
        description="the same budget for WARN findings (looser: warnings do not act)",
    )
    arl0: float = Field(
        default=10_000.0,
        ge=10,
        description="floor on each chart's in-control run length (observations between false "
        "alarms), whatever the false-alarm budget gives",
    )
    log_format: Literal["json", "console"] | None = Field(
        default=None, description="json or console; by TTY when unset"
    )
    log_level: str = Field(default="info", description="debug, info, warning, error")
    max_workflows: int = Field(default=500, ge=1, description="cap on workflow label values")
    retention_days: float = Field(default=30.0, gt=0, description="raw event retention")
    ingest_concurrency: int = Field(default=8, ge=1, description="concurrent ingest batches")
    parse_processes: int = Field(
        default=1,
        ge=0,
        description="processes that parse and validate ingest batches beside the server "
        "(0: parse in the server process)",
    )
    detection: bool = Field(default=True, description="run the detection scheduler in serve")
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(
        default="NORMAL", description="FULL also survives power loss (one fsync per batch)"
    )
    sqlite_autocheckpoint: int = Field(
        default=10_000,
        ge=0,
        description="WAL pages (4 KiB) before a commit copies the WAL into the database file",
    )

    # the OTLP/HTTP receiver (POST /v1/traces): how spans become events, docs/otlp-mapping.md
    otlp_workflow_attribute: str = Field(
        default="driftwarden.workflow",
        min_length=1,
        description="span (then resource) attribute naming the workflow",
    )
    otlp_workflow_resource_attribute: str | None = Field(
        default="service.name",
        description="resource attribute used, normalised, when no span names the workflow",
    )
    otlp_default_workflow: str | None = Field(
        default=None,
        pattern=WORKFLOW_PATTERN,
        description="workflow of spans that name none (unset: such spans are rejected)",
    )
    otlp_select: Literal["ai", "driftwarden", "all"] = Field(
        default="ai",
        description="which spans become events: AI spans, spans with driftwarden.* "
        "attributes, or all",
    )
    otlp_cost_from_aggregate_spans: bool = Field(
        default=False,
        description="also bill agent/workflow spans (their tokens repeat their model calls')",
    )
    otlp_price_missing_cost: bool = Field(
        default=True, description="compute cost_usd from the price table when a span has none"
    )
    otlp_max_body_bytes: int = Field(
        default=OTLP_MAX_BODY_BYTES, ge=1, description="largest export accepted (413 above)"
    )
    otlp_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="exports handled at once before a 429 (unset: DRIFTWARDEN_INGEST_CONCURRENCY)",
    )

    @field_validator("ingest_tokens", "read_tokens", "control_tokens", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @property
    def has_tokens(self) -> bool:
        return bool(self.ingest_tokens or self.read_tokens or self.control_tokens)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def load_file(self) -> FileConfig:
        """The TOML config (empty when none is configured)."""
        return load_config(self.config) if self.config else FileConfig()


class ConfigError(Exception):
    """A config file that cannot be used; ``problems`` lists (key path, message)."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {key}: {msg}" for key, msg in problems)
        super().__init__(f"{path}: {len(problems)} problem(s)\n{lines}")
        self.path = path
        self.problems = problems


def load_config(path: Path) -> FileConfig:
    """Read and validate a TOML config file, or raise ``ConfigError`` naming every bad key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, [("", "file not found")]) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(path, [("", f"not valid TOML: {err}")]) from None
    try:
        return FileConfig.model_validate(data)
    except ValidationError as err:
        problems = [
            (".".join(str(p) for p in e["loc"]) or "(top level)", e["msg"]) for e in err.errors()
        ]
        raise ConfigError(path, problems) from None
