"""A real Prometheus for tests, and the mixin renders it evaluates.

`PrometheusServer` starts the `prometheus` binary (Debian package `prometheus`)
on a free loopback port with temporary storage, scraping the targets it is
given every second, and stops it by its PID. The render helpers call the
`jsonnet` CLI on `grafana/mixin`, the same way `grafana/mixin.mk` does, so tests
check exactly what is committed or what the mixin would produce with another
config.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from harness.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
MIXIN_DIR = REPO_ROOT / "grafana" / "mixin"
DASHBOARD_FILE = REPO_ROOT / "grafana" / "dashboards" / "churn-ab-overview.json"
RULES_DIR = REPO_ROOT / "prometheus" / "rules"
RULE_FILES = ("churn-ab.rules.yml", "churn-ab.alerts.yml")


class PrometheusError(RuntimeError):
    """Prometheus did not start, or answered a query with an error."""


# --------------------------------------------------------------------------
# Rendering the mixin


def render_rules(out_dir: Path, config: Mapping[str, Any] | None = None) -> list[Path]:
    """Render the rule and alert files into `out_dir`, optionally overriding
    `_config` fields (e.g. `{"rateWindow": "30s"}`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["jsonnet", "-J", str(MIXIN_DIR), "-S", "-m", str(out_dir)]
    if config:
        cmd += ["--tla-code", f"config={json.dumps(dict(config))}"]
    cmd.append(str(MIXIN_DIR / "render-rules.jsonnet"))
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)
    return [out_dir / name for name in RULE_FILES]


def render_dashboards(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            "jsonnet",
            "-J",
            str(MIXIN_DIR),
            "-m",
            str(out_dir),
            str(MIXIN_DIR / "render-dashboards.jsonnet"),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [Path(line) for line in result.stdout.split()]


def load_rule_groups(path: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
    return groups


def rules_of(path: Path) -> list[dict[str, Any]]:
    return [rule for group in load_rule_groups(path) for rule in group["rules"]]


def dashboard_targets(dashboard: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every query in the dashboard."""
    return [
        (panel["title"], target["refId"], target["expr"])
        for panel in dashboard["panels"]
        if panel.get("type") != "row"
        for target in panel["targets"]
    ]


def concrete_dashboard_expr(
    expr: str, window: str, variables: Mapping[str, str]
) -> str:
    """Replace Grafana's macros and template variables the way Grafana would
    before it sends the query: `$__rate_interval` by a window, `$name` by the
    variable's value. Fails on any `$` left that is not a regex back-reference
    in a `label_replace` replacement ("$1")."""
    out = expr.replace("$__rate_interval", window)
    for name, value in variables.items():
        out = re.sub(rf"\${name}\b", value, out)
    leftover = re.findall(r"\$(?!\d)[A-Za-z_{]\w*", out)
    if leftover:
        raise ValueError(f"unsubstituted Grafana variables {leftover} in {expr!r}")
    return out


# --------------------------------------------------------------------------
# Running Prometheus


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ScrapeJob:
    """One scrape job: `targets` are `host:port` strings."""

    name: str
    targets: Sequence[str]
    metrics_path: str = "/metrics"


@dataclass
class PrometheusServer:
    """A `prometheus` process on 127.0.0.1 with 1 s scrape and rule intervals.

    Use as a context manager; `stop()` terminates it by PID and waits, and the
    temporary directory (config, storage, log) is removed afterwards.
    """

    jobs: Sequence[ScrapeJob]
    rule_files: Sequence[Path] = ()
    interval: str = "1s"
    binary: str = "prometheus"
    startup_timeout: float = 30.0
    port: int = 0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp("-prom")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        rules_dir = self.workdir / "rules"
        return {
            "global": {
                "scrape_interval": self.interval,
                "scrape_timeout": self.interval,
                "evaluation_interval": self.interval,
            },
            "rule_files": [str(rules_dir / Path(p).name) for p in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": job.name,
                    "metrics_path": job.metrics_path,
                    "static_configs": [{"targets": list(job.targets)}],
                }
                for job in self.jobs
            ],
        }

    def start(self) -> PrometheusServer:
        binary = shutil.which(self.binary)
        if binary is None:
            raise PrometheusError(
                f"{self.binary!r} not on PATH: apt-get install -y prometheus"
            )
        rules_dir = self.workdir / "rules"
        rules_dir.mkdir(parents=True, exist_ok=True)
        for rule_file in self.rule_files:
            shutil.copy(rule_file, rules_dir / Path(rule_file).name)
        config_file = self.workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.port = self.port or free_port()
        log = (self.workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with {self.process.returncode}:\n{self.log()}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp,
            ):
                if resp.status == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise PrometheusError(f"prometheus not ready in {self.startup_timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---------------------------------------------------------------- API

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as err:
            body = json.load(err)
        if body.get("status") != "success":
            raise PrometheusError(
                f"{path} {params}: {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector (raises on a bad query)."""
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr!r} returned a {data['resultType']}")
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(
        self, expr: str, timeout: float = 30.0, poll: float = 0.5
    ) -> list[dict[str, Any]]:
        """Poll until `expr` returns at least one series."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result or time.monotonic() > deadline:
                return result
            time.sleep(poll)

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self.api("rules")["groups"]
        return groups


@contextlib.contextmanager
def running_prometheus(
    jobs: Sequence[ScrapeJob], rule_files: Sequence[Path] = ()
) -> Iterator[PrometheusServer]:
    server = PrometheusServer(jobs=jobs, rule_files=rule_files)
    with server:
        yield server
    if port_is_open(server.port):
        raise PrometheusError(f"prometheus still listens on {server.port}")
