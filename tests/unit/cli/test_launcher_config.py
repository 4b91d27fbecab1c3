"""The launcher's configuration: ports, the project root, FARM_HOME, what comes from outside."""

from pathlib import Path

import pytest

from farm_cli.launcher.config import (
    PRIVATE_NETWORKS,
    FarmConfig,
    ProjectNotFound,
    find_project_root,
)
from farm_cli.launcher.infra import SEAWEEDFS_START_TIMEOUT, S3Credentials
from farm_cli.launcher.ports import MAX_AGENTS, FarmPorts
from farm_cli.launcher.processes import port_open
from farm_cli.launcher.services import (
    S3Target,
    SharedSettings,
    agent_launches,
    core_service_launches,
    trace_env,
    trace_sink_launch,
)
from farm_core.identity_keys import new_private_key, private_pem

# PostgreSQL, MariaDB, Redis, RabbitMQ, MQTT and NATS run on this machine kind.
TAKEN_BY_THE_MACHINE = {5432, 3306, 6379, 5672, 1883, 4222}


def make_checkout(folder: Path) -> Path:
    (folder / "envoy").mkdir(parents=True)
    (folder / "envoy" / "envoy.yaml.j2").write_text("")
    (folder / "buf.yaml").write_text("")
    return folder


def test_default_ports_are_the_documented_ones() -> None:
    ports = FarmPorts()
    assert (ports.envoy, ports.envoy_admin) == (8080, 9901)
    assert (ports.auth, ports.storage, ports.scheduler) == (7101, 7102, 7103)
    assert (ports.agent(1), ports.agent(3), ports.agent_metrics(2)) == (7110, 7112, 7211)
    assert (ports.nats, ports.nats_monitor) == (7422, 7822)
    assert (ports.seaweed_ports().s3, ports.seaweed_ports().metrics) == (7304, 7305)


def test_default_ports_are_unique_and_avoid_the_machines_services() -> None:
    every = [port for _, port in FarmPorts().all_ports(agents=MAX_AGENTS)]
    assert len(every) == len(set(every))
    assert not TAKEN_BY_THE_MACHINE & set(every)


def test_free_ports_are_unique_and_free() -> None:
    ports = FarmPorts.free()
    every = [port for _, port in ports.all_ports(agents=MAX_AGENTS)]
    assert len(every) == len(set(every))
    assert not any(port_open("127.0.0.1", port) for port in every)


def test_each_port_can_be_set_by_its_variable() -> None:
    ports = FarmPorts.from_environment(
        {"FARM_AUTH_PORT": "17101", "FARM_AGENT_PORT": "17110", "FARM_NATS_MONITOR_PORT": "17822"}
    )
    assert (ports.auth, ports.agent(2), ports.nats_monitor) == (17101, 17111, 17822)
    assert ports.storage == 7102
    assert FarmPorts.from_environment(ports.environment()) == ports


def test_a_port_variable_that_is_no_port_is_refused() -> None:
    with pytest.raises(ValueError, match="FARM_ENVOY_PORT"):
        FarmPorts.from_environment({"FARM_ENVOY_PORT": "eighty"})


def test_project_root_is_found_from_a_subfolder(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    deep = root / "services" / "agent"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == root.resolve()


def test_no_project_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFound, match=r"envoy/envoy\.yaml\.j2 and buf\.yaml"):
        find_project_root(tmp_path)


def test_farm_home_defaults_to_dot_farm_in_the_checkout(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    config = FarmConfig.from_environment(cwd=root, environ={})
    assert config.home == root.resolve() / ".farm"
    assert config.descriptor_set == root.resolve() / "envoy" / "farm.binpb"


def test_farm_home_from_the_environment_is_made_absolute(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    config = FarmConfig.from_environment(cwd=root, environ={"FARM_HOME": "state"})
    assert config.home == (root / "state").resolve()


def test_allow_private_opens_loopback_and_private_ranges(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    config = FarmConfig.from_environment(cwd=root, environ={}, allow_private=True)
    assert config.agent_allow is not None
    assert config.agent_allow.split(",") == list(PRIVATE_NETWORKS)
    assert {"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(PRIVATE_NETWORKS)


def test_external_infrastructure_comes_from_the_environment(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    config = FarmConfig.from_environment(
        cwd=root,
        environ={
            "NATS_URL": "nats://elsewhere:4222",
            "S3_ENDPOINT": "https://s3.example",
            "S3_ACCESS_KEY": "ak",
            "S3_SECRET_KEY": "sk",
            "DATABASE_URL": "postgresql://db/farm",
            "FARM_ADMIN_KEY": "bf_given",
        },
    )
    assert config.nats_url == "nats://elsewhere:4222"
    assert config.s3_endpoint == "https://s3.example"
    assert config.s3_credentials is not None and config.s3_credentials.secret_key == "sk"
    assert config.database_url == "postgresql://db/farm"
    assert config.admin_key == "bf_given"
    assert "sk" not in repr(config) and "bf_given" not in repr(config)


def test_s3_endpoint_without_keys_is_refused(tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "repo")
    with pytest.raises(ValueError, match="S3_ACCESS_KEY"):
        FarmConfig.from_environment(cwd=root, environ={"S3_ENDPOINT": "http://s3"})


def test_agent_count_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="agents"):
        FarmConfig(root=tmp_path, home=tmp_path, agents=MAX_AGENTS + 1)


def test_spans_go_to_the_local_sink_with_traces_else_to_the_given_collector(
    tmp_path: Path,
) -> None:
    root = make_checkout(tmp_path)
    collector = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    plain = FarmConfig.from_environment(cwd=root, environ={})
    assert plain.trace_endpoint is None
    assert trace_env(plain) == {}
    given = FarmConfig.from_environment(cwd=root, environ=collector)
    assert given.trace_endpoint == "http://collector:4317"
    traced = FarmConfig.from_environment(cwd=root, environ=collector, traces=True)
    assert traced.trace_endpoint == f"http://127.0.0.1:{traced.ports.traces}"
    assert traced.traces_folder == root / ".farm" / "traces"
    assert trace_env(traced)["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == traced.trace_endpoint


def test_every_service_process_sends_its_spans_under_its_own_name(tmp_path: Path) -> None:
    config = FarmConfig(
        root=make_checkout(tmp_path),
        home=tmp_path / "home",
        agents=2,
        traces=True,
        service_env={"OTEL_BSP_SCHEDULE_DELAY": "100"},
    )
    shared = SharedSettings(
        nats_url="nats://127.0.0.1:7422",
        identity_key=private_pem(new_private_key()),
        grant_key=private_pem(new_private_key()),
    )
    s3 = S3Target("http://127.0.0.1:7304", S3Credentials("a", "b"), "bucket")
    launches = [*core_service_launches(config, shared, "key", s3), *agent_launches(config, shared)]
    for launch in launches:
        env = launch.spec.env
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317"
        assert env["OTEL_BSP_SCHEDULE_DELAY"] == "100"
        assert env["OTEL_RESOURCE_ATTRIBUTES"] == f"service.instance.id={launch.spec.name}"
    sink = trace_sink_launch(config)
    assert sink.address == "127.0.0.1:4317"
    assert sink.spec.argv[-2:] == ["--folder", str(tmp_path / "home" / "traces")]


@pytest.mark.parametrize(
    ("service_env", "expected"),
    [({}, str(SEAWEEDFS_START_TIMEOUT)), ({"FARM_STORAGE_S3_READY_TIMEOUT_SECONDS": "5"}, "5")],
    ids=["launcher's wait", "service_env's"],
)
def test_storage_waits_for_its_bucket_as_long_as_the_launcher_waits_for_s3(
    tmp_path: Path, service_env: dict[str, str], expected: str
) -> None:
    # Storage starts beside SeaweedFS, so it must not give up on S3 before the launcher.
    config = FarmConfig(
        root=make_checkout(tmp_path), home=tmp_path / "home", service_env=service_env
    )
    shared = SharedSettings(
        nats_url="nats://127.0.0.1:7422",
        identity_key=private_pem(new_private_key()),
        grant_key=private_pem(new_private_key()),
    )
    s3 = S3Target("http://127.0.0.1:7304", S3Credentials("a", "b"), "bucket")
    [storage] = [
        launch
        for launch in core_service_launches(config, shared, "key", s3)
        if launch.spec.name == "storage"
    ]
    assert storage.spec.env["FARM_STORAGE_S3_READY_TIMEOUT_SECONDS"] == expected
