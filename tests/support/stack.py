"""Real Prometheus and Alertmanager binaries on free loopback ports, for the slow tests.

The binaries come from Debian's `prometheus` and `prometheus-alertmanager` packages (the
Alertmanager binary is installed as `prometheus-alertmanager`). A missing binary raises,
it does not skip. The daemon itself is started with tests/support/daemon.py; `Traffic` builds the
canonical events the tests POST to it.

    with Prometheus(tmp, target="127.0.0.1:8000", rules=[rules]) as prom:
        prom.wait_for(lambda: prom.query("up") != [])
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from tests.support.daemon import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]  # the repository
RULES = ROOT / "alerts" / "driftwarden.rules.yml"
AM_CONFIG = ROOT / "alerts" / "alertmanager.yml"
T = TypeVar("T")


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        f"none of {names} on PATH: apt-get install -y prometheus prometheus-alertmanager"
    )


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.5) -> T:
    """Poll `check` until it returns something truthy; raise naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            error = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r} {error!r}")


class _Process:
    """A subprocess that logs to a file and is ready when GET /-/ready answers 200."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> _Process:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log)
        if wait_until_ready(self.proc, self.url + "/-/ready", timeout, self.log, interval=0.2):
            return self
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Prometheus(_Process):
    """Scrapes one driftwarden target (job="driftwarden") every `interval`, evaluates `rules`."""

    def __init__(
        self,
        workdir: Path,
        target: str,
        rules: list[Path],
        alertmanager: str | None = None,
        interval: str = "1s",
    ) -> None:
        super().__init__(workdir, "prometheus")
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(r) for r in rules],
            "scrape_configs": [
                {"job_name": "driftwarden", "static_configs": [{"targets": [target]}]}
            ],
        }
        if alertmanager:
            host = alertmanager.removeprefix("http://")
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))

    def command(self) -> list[str]:
        return [
            binary("prometheus"),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; raises on a PromQL error (HTTP 400/422) so bad queries fail loudly."""
        resp = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            raise PromQLError(f"{expr}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def firing(self, alertname: str) -> list[dict[str, str]]:
        """Label sets of the firing alerts with that name."""
        alerts = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return [
            a["labels"]
            for a in alerts
            if a["labels"].get("alertname") == alertname and a["state"] == "firing"
        ]


class PromQLError(AssertionError):
    pass


class Alertmanager(_Process):
    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        super().__init__(workdir, "alertmanager")
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(config))

    def command(self) -> list[str]:
        return [
            binary("alertmanager", "prometheus-alertmanager"),
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no HA gossip port
        ]

    def __enter__(self) -> Alertmanager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fast_rules(dest: Path, for_: str = "1s") -> Path:
    """A copy of our rules with every `for:` shortened, so a test sees alerts in seconds."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = for_
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest


def alertmanager_test_config(daemon_url: str, token_file: Path) -> dict[str, Any]:
    """Our example config with the webhook aimed at the test daemon and short timers.

    The pager and chat receivers keep their names and routes but lose their integrations
    (they would try to reach PagerDuty and a placeholder host).
    """
    config: dict[str, Any] = yaml.safe_load(AM_CONFIG.read_text())
    route = config["route"]
    route.update(group_wait="1s", group_interval="2s")
    for sub in route["routes"]:
        if sub["receiver"] == "driftwarden":
            sub.update(group_wait="1s", group_interval="2s", repeat_interval="1m")
    for receiver in config["receivers"]:
        if receiver["name"] == "driftwarden":
            (hook,) = receiver["webhook_configs"]
            hook["url"] = f"{daemon_url}/v1/alertmanager"
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
        else:
            for key in [k for k in receiver if k != "name"]:
                del receiver[key]
    return config


class Traffic:
    """Canonical events for one workflow: runs, reviews, cost records and a KPI.

    Rates are probabilities per run, drawn from a seeded generator, so a test can switch a
    workflow from healthy to drifting by changing them between batches.
    """

    def __init__(
        self,
        workflow: str,
        seed: int,
        *,
        error_rate: float = 0.01,
        timeout_rate: float = 0.01,
        edit_rate: float = 0.1,
        groundedness: float = 0.9,
        validation_fail_rate: float = 0.05,
        model: str = "gpt-4o-mini",
    ) -> None:
        self.workflow = workflow
        self.rng = random.Random(seed)
        self.error_rate = error_rate
        self.timeout_rate = timeout_rate
        self.edit_rate = edit_rate
        self.groundedness = groundedness
        self.validation_fail_rate = validation_fail_rate
        self.model = model

    def _id(self) -> str:
        return f"{self.workflow}-{uuid.UUID(int=self.rng.getrandbits(128))}"

    def run(self) -> dict[str, Any]:
        r = self.rng.random()
        status = (
            "error"
            if r < self.error_rate
            else "timeout"
            if r < self.error_rate + self.timeout_rate
            else "ok"
        )
        return {
            "id": self._id(),
            "type": "run",
            "workflow": self.workflow,
            "team": self.rng.choice(["finance", "ops"]),
            "user": f"user{self.rng.randrange(5)}",
            "status": status,
            "retries": self.rng.choice([0, 0, 0, 1]),
            "latency_ms": round(self.rng.uniform(200, 1500), 1),
            "action": "send_email",
            "model": self.model,
            "model_version": "2026-01",
            "groundedness": round(min(1.0, max(0.0, self.rng.gauss(self.groundedness, 0.03))), 3),
            "confidence": round(self.rng.uniform(0.6, 1.0), 3),
            "validation": "failed" if self.rng.random() < self.validation_fail_rate else "passed",
            "input_tokens": self.rng.randrange(500, 1500),
            "output_tokens": self.rng.randrange(50, 300),
            "cost_usd": round(self.rng.uniform(0.001, 0.01), 5),
        }

    def review(self) -> dict[str, Any]:
        r = self.rng.random()
        decision = (
            "rejected" if r < self.edit_rate / 3 else "edited" if r < self.edit_rate else "approved"
        )
        return {
            "id": self._id(),
            "type": "review",
            "workflow": self.workflow,
            "team": "finance",
            "user": f"reviewer{self.rng.randrange(3)}",
            "decision": decision,
            "edit_ratio": round(self.rng.uniform(0.1, 0.6), 3) if decision != "approved" else 0.0,
            "review_ms": self.rng.randrange(5_000, 60_000),
            "time_saved_s": self.rng.randrange(60, 600),
        }

    def cost(self, model: str | None = None, priced: bool = True) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": self._id(),
            "type": "cost",
            "workflow": self.workflow,
            "provider": "openai",
            "model": model or self.model,
            "input_tokens": self.rng.randrange(500, 1500),
            "output_tokens": self.rng.randrange(50, 300),
        }
        if priced:
            event["cost_usd"] = round(self.rng.uniform(0.001, 0.01), 5)
        return event

    def kpi(self) -> dict[str, Any]:
        return {
            "id": self._id(),
            "type": "kpi",
            "workflow": self.workflow,
            "name": "invoices_paid_on_time",
            "value": round(self.rng.uniform(0.8, 0.95), 3),
            "unit": "ratio",
        }

    def batch(self, runs: int) -> list[dict[str, Any]]:
        """`runs` runs, one review per run, a priced cost record and a KPI every other run.

        KPIs come often because the daemon learns a KPI baseline from 100 observations
        before it reports a value.
        """
        events: list[dict[str, Any]] = []
        for i in range(runs):
            events += [self.run(), self.review()]
            if i % 2 == 0:
                events += [self.cost(), self.kpi()]
        return events


def post_events(daemon_url: str, token: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    resp = httpx.post(
        f"{daemon_url}/v1/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body
