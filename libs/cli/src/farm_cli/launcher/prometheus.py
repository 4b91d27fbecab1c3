"""Prometheus for the local farm (`farm up --observe`): its scrape config, rules and process.

The configuration is rendered from deploy/prometheus/prometheus.yml.j2 with a job
per kind of process (the services, the agents, Envoy) and the alert rules of
deploy/prometheus/rules/. The binary is Debian's `prometheus` package, which
`make observe-deps` installs.
"""

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.health import http_ok
from farm_cli.launcher.processes import ProcessSpec

HOST = "127.0.0.1"
SCRAPE_INTERVAL = "5s"
STOP_TIMEOUT = 10.0
# Where Debian's package puts the program.
SEARCHED = ("prometheus", "/usr/bin/prometheus")


@dataclass(frozen=True)
class ScrapeTarget:
    """One process's /metrics address and the labels its series get."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScrapeJob:
    """One kind of process: its job name, where its metrics are served, its targets."""

    name: str
    targets: Sequence[ScrapeTarget]
    metrics_path: str = "/metrics"


def scrape_jobs(config: FarmConfig) -> list[ScrapeJob]:
    """Every process of the farm that serves metrics, as Prometheus jobs."""
    ports = config.ports
    jobs = [ScrapeJob("envoy", [ScrapeTarget(f"{HOST}:{ports.envoy_admin}")], "/stats/prometheus")]
    if config.s3_endpoint is None:
        # The farm runs SeaweedFS itself (no S3_ENDPOINT given), with its metrics port open.
        jobs.append(ScrapeJob("seaweedfs", [ScrapeTarget(f"{HOST}:{ports.seaweed_metrics}")]))
    if not config.start_services:
        return jobs
    for service, port in (
        ("auth", ports.auth_metrics),
        ("storage", ports.storage_metrics),
        ("scheduler", ports.scheduler_metrics),
        ("mcp", ports.mcp_metrics),
        ("console", ports.console_metrics),
    ):
        jobs.append(ScrapeJob(f"farm-{service}", [ScrapeTarget(f"{HOST}:{port}")]))
    agents = [
        ScrapeTarget(f"{HOST}:{ports.agent_metrics(index)}", _agent_labels(config, index))
        for index in range(1, config.agents + 1)
    ]
    if agents:
        jobs.append(ScrapeJob("farm-agent", agents))
    return jobs


def _agent_labels(config: FarmConfig, index: int) -> dict[str, str]:
    """agent="agent-N"; autoscaled="true" above autoscaling's least: often down on purpose."""
    labels = {"agent": f"agent-{index}"}
    if index > config.initial_agents:
        labels["autoscaled"] = "true"
    return labels


def render_prometheus_config(template: Path, jobs: Sequence[ScrapeJob], rules_dir: Path) -> str:
    """The Prometheus configuration (YAML) scraping `jobs` with the rules of `rules_dir`."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template.parent),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return environment.get_template(template.name).render(
        scrape_interval=SCRAPE_INTERVAL,
        farm_name="local",
        rules_glob=str(rules_dir / "*.rules.yml"),
        jobs=[
            {
                "name": job.name,
                "metrics_path": job.metrics_path,
                "targets": [{"address": t.address, "labels": dict(t.labels)} for t in job.targets],
            }
            for job in jobs
        ],
    )


def prometheus_binary() -> str:
    """The prometheus program; FileNotFoundError saying how to install it."""
    for name in SEARCHED:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("prometheus is not installed; run `make observe-deps`")


def prometheus_spec(config_file: Path, data_dir: Path, port: int) -> ProcessSpec:
    """Prometheus with `config_file`, its data under `data_dir`, on 127.0.0.1:`port`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return ProcessSpec(
        name="prometheus",
        argv=[
            prometheus_binary(),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={HOST}:{port}",
            "--storage.tsdb.retention.time=7d",
        ],
        stop_timeout=STOP_TIMEOUT,
    )


def prometheus_ready(port: int) -> bool:
    """Whether Prometheus says it is ready to serve queries."""
    return http_ok(f"http://{HOST}:{port}/-/ready")


def write_prometheus_config(config: FarmConfig, path: Path) -> Path:
    """Renders the farm's Prometheus configuration to `path`; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rules_dir = config.root / "deploy" / "prometheus" / "rules"
    text = render_prometheus_config(config.prometheus_template, scrape_jobs(config), rules_dir)
    path.write_text(text)
    return path
