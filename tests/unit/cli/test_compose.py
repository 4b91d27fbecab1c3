"""compose.yaml's structure (no Docker engine here: the file is checked, not run)."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from farm_cli.launcher.config import find_project_root
from farm_core.settings import FarmSettings
from tests.helpers import TEST_IDENTITY_KEY, TEST_PUBLIC_KEY
from tests.unit.cli.envoy_render import COMPOSE_RENDER_ARGS
from tests.unit.deploy.nats_logins import (
    SERVICE_USERS,
    check_roles,
    current_config,
    password_variables,
)
from tests.unit.deploy.service_settings import SETTINGS, read_settings, unknown_names

ROOT = find_project_root(Path(__file__).parent)
FARM_SERVICES = set(SETTINGS)
NATS_USERS_CONF = "deploy/nats/users.conf"
NATS_CLUSTER_CONF = "deploy/nats/cluster.conf"
NATS_NODES = ("nats", "nats-1", "nats-2", "nats-3")
EDGE_PORT = 8080
"""Envoy's listener in compose.yaml (COMPOSE_RENDER_ARGS' --listen)."""
# ${NAME:?message} and ${NAME:-default} as compose fills them in for the check.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")
STAND_INS = {
    "FARM_IDENTITY_KEY": TEST_IDENTITY_KEY,
    "FARM_IDENTITY_PUBLIC_KEY": TEST_PUBLIC_KEY,
    "FARM_MCP_CREDENTIAL": "stand-in-credential",
    "FARM_AUTH_KEY_PEPPER": "p" * 48,
    "FARM_ADMIN_KEY": "bf_" + "0" * 48,
}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    assert isinstance(env, dict)
    return env


def test_compose_runs_the_whole_farm(services: dict[str, dict[str, Any]]) -> None:
    assert {"nats", "postgres", "envoy", *FARM_SERVICES} <= set(services)
    assert {"minio", "seaweedfs"} & set(services)


def test_every_service_has_an_image_or_a_build(services: dict[str, dict[str, Any]]) -> None:
    missing = [name for name, s in services.items() if not ("image" in s or "build" in s)]
    assert not missing


def test_every_dependency_is_a_service(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def interpolated(value: str) -> str:
    """`value` as compose would pass it with none of the variables set (stand-ins for secrets)."""

    def fill(match: re.Match[str]) -> str:
        name, kind, text = match.groups()
        return text if kind == "-" else STAND_INS.get(name, "stand-in-for-" + name)

    return INTERPOLATION.sub(fill, value)


def service_settings(service: dict[str, Any], name: str) -> FarmSettings:
    env = {key: interpolated(str(value)) for key, value in environment(service).items()}
    return read_settings(name, env)


def test_farm_services_read_only_real_settings(services: dict[str, dict[str, Any]]) -> None:
    for name in FARM_SERVICES:
        unknown = unknown_names(name, set(environment(services[name])))
        assert not unknown, f"{name} sets variables it does not read: {sorted(unknown)}"
        settings = service_settings(services[name], name)  # raises on a value it refuses
        assert settings.host == "0.0.0.0"


def upstream_ports() -> dict[str, tuple[str, int]]:
    """Envoy's upstreams in envoy/compose/envoy.yaml: service name -> (host, port)."""
    found = {}
    for argument in COMPOSE_RENDER_ARGS:
        name, separator, address = argument.partition("=")
        if separator:
            host, _, port = address.rpartition(":")
            found[name] = (host, int(port))
    return found


def test_ports_are_the_ones_the_services_listen_on(services: dict[str, dict[str, Any]]) -> None:
    settings = {name: service_settings(services[name], name) for name in FARM_SERVICES}
    for name, (host, port) in upstream_ports().items():
        assert host == name and settings[name].port == port, name  # type: ignore[attr-defined]
    for name, own in settings.items():
        for field in type(own).model_fields:
            if field.endswith("_address") and getattr(own, field):
                host, _, port = getattr(own, field).rpartition(":")
                if host == "envoy":  # the console calls the farm back through the edge
                    assert int(port) == EDGE_PORT, f"{name}.{field}"
                    continue
                assert host in FARM_SERVICES, f"{name}.{field} names no service"
                assert settings[host].port == int(port), f"{name}.{field}"  # type: ignore[attr-defined]
    scraped = prometheus_targets()
    for name, own in settings.items():
        assert scraped[f"farm-{name}"] == (name, own.metrics_port)  # type: ignore[attr-defined]


def test_farm_services_run_their_package_and_share_nats_and_the_public_key(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in FARM_SERVICES:
        service = services[name]
        assert service["command"][-2:] == ["-m", f"farm_{name}"]
        env = environment(service)
        assert env["NATS_URL"] == "${NATS_URL:-nats://nats:4222}"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
        assert env["FARM_IDENTITY_PUBLIC_KEY"].startswith("${FARM_IDENTITY_PUBLIC_KEY")
        # Only auth may sign identities; agents and the MCP service get a credential.
        assert ("FARM_IDENTITY_KEY" in env) == (name == "auth"), name
        assert env["FARM_BIND_HOST"] == "0.0.0.0"


def test_agents_upload_to_the_storage_service(services: dict[str, dict[str, Any]]) -> None:
    agent = services["agent"]
    assert environment(agent)["FARM_AGENT_STORAGE_ADDRESS"] == "storage:7102"
    assert agent["deploy"]["replicas"] >= 2
    assert "FARM_AGENT_ID" not in environment(agent), "replicas would share one id"


def published_host_ports(service: dict[str, Any]) -> list[str]:
    ports = []
    for entry in service.get("ports", []):
        parts = str(entry).split(":")
        ports.append(":".join(parts[:-1]) if len(parts) > 1 else parts[0])
    return ports


def test_published_ports_do_not_collide(services: dict[str, dict[str, Any]]) -> None:
    published = [port for s in services.values() for port in published_host_ports(s)]
    assert published, "Envoy must be published"
    assert len(published) == len(set(published))
    assert all(not port.endswith(taken) for port in published for taken in ("5432", "4222"))
    assert all(port.startswith("127.0.0.1:") for port in published)


def prometheus_targets() -> dict[str, tuple[str, int]]:
    """deploy/prometheus/compose.yml's jobs: job -> (DNS name, port)."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "compose.yml").read_text())
    targets = {}
    for job in config["scrape_configs"]:
        ((discovery,),) = [job["dns_sd_configs"]]
        (name,) = discovery["names"]
        targets[job["job_name"]] = (name, discovery["port"])
    return targets


def test_prometheus_scrapes_with_the_farm_rules(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    mounts = dict(str(v).split(":")[:2] for v in prometheus["volumes"])
    assert mounts["./deploy/prometheus/compose.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./deploy/prometheus/rules"] == "/etc/prometheus/rules"
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "compose.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    assert list((ROOT / "deploy" / "prometheus" / "rules").glob("*.rules.yml"))
    assert {name for name, _ in prometheus_targets().values()} == FARM_SERVICES


def test_traces_go_to_jaeger_over_otlp(services: dict[str, dict[str, Any]]) -> None:
    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert COMPOSE_RENDER_ARGS[-2:] == ["--otlp", "jaeger:4317"]


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """The service's bind mounts: path in the container -> path here."""
    return {
        target: source for source, target, *_ in (str(v).split(":") for v in service["volumes"])
    }


def test_the_cluster_profile_runs_three_jetstream_nodes_whose_routes_log_in(
    services: dict[str, dict[str, Any]],
) -> None:
    nodes = {name: s for name, s in services.items() if s.get("profiles") == ["cluster"]}
    assert set(nodes) == {"nats-1", "nats-2", "nats-3"}
    config = (ROOT / NATS_CLUSTER_CONF).read_text()
    assert "\njetstream {" in config and "\ninclude users.conf\n" in config
    assert re.search(r"authorization \{\s+user: route\s+password: \$NATS_ROUTE_PASSWORD\s", config)
    route_variables = re.findall(r"\$(NATS_ROUTE_\d)", config)
    for name, node in nodes.items():
        assert node["command"] == ["-c", "/etc/nats/cluster.conf", f"--server_name={name}"]
        assert mounts(node)["/etc/nats/cluster.conf"] == "./" + NATS_CLUSTER_CONF
        env = environment(node)
        assert env["NATS_ROUTE_PASSWORD"].startswith("${NATS_ROUTE_PASSWORD:?"), name
        routes = {interpolated(env[variable]) for variable in route_variables}
        login = "nats://route:stand-in-for-NATS_ROUTE_PASSWORD@"
        assert routes == {f"{login}{other}:6222" for other in nodes}, name
    assert "profiles" not in services["nats"], "the single server stays the default"
    assert "export NATS_ROUTE_PASSWORD=" in (ROOT / "compose.yaml").read_text()


def test_envoy_mounts_a_config_that_exists(services: dict[str, dict[str, Any]]) -> None:
    mounts = [str(v).split(":") for v in services["envoy"].get("volumes", [])]
    (config,) = [source for source, target, *_ in mounts if target.endswith("envoy.yaml")]
    assert (ROOT / config).is_file()
    assert services["envoy"]["command"][:3] == ["envoy", "-c", "/etc/farm/envoy.yaml"]
    upstreams = {"auth", "storage", "scheduler"}
    assert upstreams <= set(services["envoy"]["depends_on"])


def test_the_dockerfile_builds_the_protos_and_has_chromium() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert "uv sync --frozen" in dockerfile
    assert "make protos" in dockerfile
    assert "chromium" in dockerfile


def test_the_dockerfile_installs_every_workspace_member() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    first_sync = dockerfile.index("uv sync")
    for project in sorted(ROOT.glob("*/*/pyproject.toml")):
        member = project.relative_to(ROOT).as_posix()
        if member.startswith(("libs/", "services/")):
            assert f"COPY {member} " in dockerfile[:first_sync], f"{member} is not copied"


def test_nats_users_conf_is_the_current_render_of_the_role_table() -> None:
    assert (ROOT / NATS_USERS_CONF).read_text() == current_config(), (
        f"{NATS_USERS_CONF} is stale; regenerate it with: farm nats-config -o {NATS_USERS_CONF}"
    )


def test_every_nats_node_runs_with_the_users_and_their_passwords(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in NATS_NODES:
        node = services[name]
        # The config it runs is users.conf, or includes it from beside it.
        command = node["command"]
        config = command[command.index("-c") + 1]
        users = str(Path(config).parent / "users.conf")
        assert mounts(node)[users] == "./" + NATS_USERS_CONF, name
        env = environment(node)
        for variable in password_variables().values():
            assert env[variable].startswith(f"${{{variable}:?"), f"{name}: {variable}"


def test_services_log_in_to_nats_as_their_own_user(services: dict[str, dict[str, Any]]) -> None:
    check_roles()
    variables = password_variables()
    for name in FARM_SERVICES:
        env = environment(services[name])
        user = SERVICE_USERS.get(name)
        if user is None:  # does not connect to NATS: no login to leak
            assert "NATS_USER" not in env and "NATS_PASSWORD" not in env, name
            continue
        assert env.get("NATS_USER") == user, f"{name} has no NATS login"
        # The secret the server checks this user's password against, never a literal.
        assert env["NATS_PASSWORD"].startswith(f"${{{variables[user]}:?"), name
        settings = service_settings(services[name], name)
        assert settings.nats().user == user and settings.nats_password


def test_streams_are_replicated_on_the_cluster_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in FARM_SERVICES:
        assert service_settings(services[name], name).nats_replicas == 1
        assert environment(services[name])["FARM_NATS_REPLICAS"] == "${FARM_NATS_REPLICAS:-1}"
    header = (ROOT / "compose.yaml").read_text().split("\nx-")[0]
    (cluster_line,) = [line for line in header.splitlines() if "nats://nats-1:4222" in line]
    assert "FARM_NATS_REPLICAS=3" in cluster_line


def exported_names(script: str) -> set[str]:
    """The variables a start script exports, `NATS_PASSWORD_$user` once per loop value."""
    loops = {name: values.split() for name, values in re.findall(r"for (\w+) in ([\w ]+);", script)}
    names: set[str] = set()
    for statement in re.findall(r"\bexport ([^;\n]+)", script):
        for name, variable in re.findall(r"(\w+)(?:\$(\w+))?=", statement):
            values = loops.get(variable, []) if variable else [""]
            names.update(name + value for value in values)
    return names


def start_scripts() -> dict[str, str]:
    """compose.yaml's header and docs/deploy.md's block, each the lines that start the farm."""
    header = (ROOT / "compose.yaml").read_text().split("\nx-")[0]
    deploy_doc = (ROOT / "docs" / "deploy.md").read_text()
    (doc_block,) = [
        block
        for block in re.findall(r"^```sh\n(.*?)^```$", deploy_doc, re.M | re.S)
        if "docker compose up" in block
    ]
    return {"compose.yaml's header": header, "docs/deploy.md": doc_block}


@pytest.mark.parametrize("where", sorted(start_scripts()))
def test_the_start_commands_export_every_variable_compose_requires(where: str) -> None:
    # compose refuses to start while a ${NAME:?…} of the file is unset, profiles or not.
    required = {
        name
        for name, kind, _ in INTERPOLATION.findall((ROOT / "compose.yaml").read_text())
        if kind == "?"
    }
    missing = sorted(required - exported_names(start_scripts()[where]))
    assert not missing, f"{where} starts compose without exporting {missing}"
