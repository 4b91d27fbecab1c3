"""deploy/k8s holds to the code: valid objects, real settings, ports, probes, drain, scaling.

No cluster here: the objects are checked against the Kubernetes API's JSON schemas
(kubernetes-validate) and against the services' own settings classes.
"""

import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from farm_agent.settings import AgentSettings
from farm_agent.work.intake import HAND_BACK_SECONDS
from farm_cli.main import main
from farm_core.queue import ANY_REGION, TASK_STREAM, Priority, consumer_name
from farm_core.server import AUDIT_FLUSH_SECONDS
from farm_scheduler.field_checks import MAX_TIMEOUT_MS
from tests.unit.deploy.manifests import (
    K8S,
    Manifests,
    container_port,
    kustomization,
    service_settings,
)
from tests.unit.deploy.service_settings import SETTINGS, read_settings, unknown_names

# The oldest Kubernetes the manifests are written for (gRPC probes are GA from 1.27).
KUBERNETES_VERSION = "1.30"
GRPC_SERVICES = ("auth", "storage", "scheduler", "agent")
# Addressed by name, so every replica is seen: Envoy's clusters, the agents' uploads.
HEADLESS = ("auth", "storage", "scheduler", "mcp", "nats")
K8S_ENVOY_RENDER_ARGS = [
    "envoy-config",
    "--listen",
    "0.0.0.0:8080",
    "--descriptor",
    "/app/envoy/farm.binpb",
    *("--upstream", "auth=auth:7101"),
    *("--upstream", "storage=storage:7102"),
    *("--upstream", "scheduler=scheduler:7103"),
    *("--upstream", "mcp=mcp:7104"),
    *("--upstream", "console=console:7105"),
]
# Why a pod may wait past FARM_GRACE_SECONDS: handing back, the audit flush, the close.
STOP_OVERHEAD_SECONDS = HAND_BACK_SECONDS + AUDIT_FLUSH_SECONDS


def test_the_kustomization_lists_every_manifest_here() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_every_object_matches_the_kubernetes_schema(manifests: Manifests) -> None:
    for obj in manifests.objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # a custom resource: checked by the KEDA test below
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            pytest.fail(f"{name}: {error.message} at {list(error.path)}")


def test_every_farm_service_runs_its_package_from_the_one_image(manifests: Manifests) -> None:
    assert set(SETTINGS) <= manifests.names("Deployment")
    for service in SETTINGS:
        container = manifests.container(service)
        assert container["image"] == "browserfarm"
        assert container["command"] == ["python", "-m", f"farm_{service}"]
    assert manifests.container("envoy")["image"] == "browserfarm"


def test_farm_containers_set_only_real_settings_with_valid_values(manifests: Manifests) -> None:
    for service in SETTINGS:
        environment = manifests.environment(manifests.container(service))
        unknown = unknown_names(service, set(environment))
        assert not unknown, f"{service} sets variables it does not read: {sorted(unknown)}"
        settings = read_settings(service, environment)  # raises on a value it refuses
        assert settings.host == "0.0.0.0"
        signs = service == "auth"
        given = "FARM_IDENTITY_KEY" if signs else "FARM_IDENTITY_PUBLIC_KEY"
        assert given in environment, f"{service} needs {given}"
        # Only auth may sign identities; the MCP service has auth renew its callers'.
        assert ("FARM_IDENTITY_KEY" in environment) == signs, service
    mcp = manifests.environment(manifests.container("mcp"))
    assert "FARM_MCP_CREDENTIAL" in mcp
    assert mcp["FARM_MCP_AUTH_ADDRESS"] == "auth:7101"


def test_every_secret_and_config_key_is_one_the_docs_create(manifests: Manifests) -> None:
    instructions = (K8S / "kustomization.yaml").read_text()
    for secret, key in manifests.secret_keys():
        assert secret == "farm-secrets"
        recipe = (f"--from-literal={key}=", f"--from-file={key}=")
        assert any(r in instructions for r in recipe), f"{key} is not in the Secret's recipe"


def test_ports_and_probes_are_the_services_own(manifests: Manifests) -> None:
    for service in SETTINGS:
        settings = service_settings(manifests, service)
        container = manifests.container(service)
        port, metrics_port = settings.port, settings.metrics_port  # type: ignore[attr-defined]
        main_port = "grpc" if service in GRPC_SERVICES else "http"
        assert container_port(container, main_port) == port
        assert container_port(container, "metrics") == metrics_port
        annotations = manifests.get("Deployment", service)["spec"]["template"]["metadata"]
        assert annotations["annotations"]["prometheus.io/port"] == str(metrics_port)
        readiness = container["readinessProbe"]
        if service in GRPC_SERVICES:
            # The gRPC health service: SERVING once started, NOT_SERVING from a drain.
            assert readiness["grpc"] == {"port": port}
            assert container["startupProbe"]["grpc"] == {"port": port}
        else:
            assert readiness["httpGet"] == {"path": "/healthz", "port": port}
        liveness = container["livenessProbe"]
        assert port in {liveness.get(kind, {}).get("port") for kind in ("grpc", "httpGet")} or (
            service == "agent" and liveness["tcpSocket"] == {"port": metrics_port}
        )


def test_services_expose_the_ports_the_settings_listen_on(manifests: Manifests) -> None:
    for service in SETTINGS.keys() - {"agent"}:
        settings = service_settings(manifests, service)
        port = manifests.service_port(service, settings.port)  # type: ignore[attr-defined]
        assert port["targetPort"] in {"grpc", "http"}
    for name in HEADLESS:
        assert manifests.get("Service", name)["spec"]["clusterIP"] == "None"


def address_is_served(manifests: Manifests, address: str) -> None:
    """Fails unless host:port names a Service here and the port its service listens on."""
    host, _, port = address.rpartition(":")
    service = host.split(".")[0]
    assert service in manifests.names("Service"), f"{address}: no Service {service}"
    manifests.service_port(service, int(port))
    if service in SETTINGS:
        assert service_settings(manifests, service).port == int(port)  # type: ignore[attr-defined]


def test_services_call_each_other_at_real_names_and_ports(manifests: Manifests) -> None:
    for service, cls in SETTINGS.items():
        settings = service_settings(manifests, service)
        for field in cls.model_fields:
            if field.endswith("_address") and getattr(settings, field):
                address_is_served(manifests, getattr(settings, field))
        nodes = manifests.get("StatefulSet", "nats")["spec"]["replicas"]
        for url in settings.nats_url.split(","):
            # A node by its own name under the headless Service: nats-N.nats:4222.
            pod, _, address = url.removeprefix("nats://").partition(".")
            address_is_served(manifests, address)
            assert int(pod.removeprefix("nats-")) < nodes, url


def test_envoy_config_map_is_the_current_render_for_these_services(
    manifests: Manifests, tmp_path: Path
) -> None:
    fresh = tmp_path / "envoy.yaml"
    assert main([*K8S_ENVOY_RENDER_ARGS, "-o", str(fresh)]) == 0
    config = manifests.get("ConfigMap", "envoy-config")["data"]["envoy.yaml"]
    assert config == fresh.read_text(), (
        "deploy/k8s/envoy/envoy.yaml is stale; regenerate it with: farm "
        + shlex.join(K8S_ENVOY_RENDER_ARGS)
        + " -o deploy/k8s/envoy/envoy.yaml"
    )
    for argument in K8S_ENVOY_RENDER_ARGS:
        if re.fullmatch(r"\w+=[\w.-]+:\d+", argument):
            address_is_served(manifests, argument.partition("=")[2])
    envoy = manifests.container("envoy")
    assert envoy["command"][:3] == ["envoy", "-c", "/etc/farm/envoy.yaml"]
    (mount,) = envoy["volumeMounts"]
    (volume,) = manifests.pod_spec("envoy")["volumes"]
    assert mount == {"name": volume["name"], "mountPath": "/etc/farm"}
    assert volume["configMap"]["name"] == "envoy-config"
    listen = yaml.safe_load(config)["static_resources"]["listeners"][0]["address"]
    assert container_port(envoy, "http") == listen["socket_address"]["port_value"]
    assert envoy["readinessProbe"]["httpGet"]["path"] == "/healthz"
    # Envoy's ext_authz asks auth over HTTP on the check port auth is set to serve.
    (check,) = [
        c
        for c in yaml.safe_load(config)["static_resources"]["clusters"]
        if c["name"] == "auth_check"
    ]
    (endpoint,) = check["load_assignment"]["endpoints"][0]["lb_endpoints"]
    address = endpoint["endpoint"]["address"]["socket_address"]
    check_port = service_settings(manifests, "auth").check_port  # type: ignore[attr-defined]
    assert address == {"address": "auth", "port_value": check_port}
    assert manifests.service_port("auth", check_port)["targetPort"] == "check"
    assert container_port(manifests.container("auth"), "check") == check_port


def test_agents_drain_on_prestop_within_a_grace_longer_than_the_longest_task(
    manifests: Manifests,
) -> None:
    settings = service_settings(manifests, "agent")
    assert isinstance(settings, AgentSettings)
    longest_task = MAX_TIMEOUT_MS / 1000 + settings.screencast_encode_seconds
    assert settings.grace_seconds >= longest_task
    assert settings.session_drain_seconds <= settings.grace_seconds
    pod = manifests.pod_spec("agent")
    assert pod["terminationGracePeriodSeconds"] >= settings.grace_seconds + STOP_OVERHEAD_SECONDS
    assert not pod.get("shareProcessNamespace"), "the agent must be PID 1"
    container = manifests.container("agent")
    assert container["command"][0] == "python", "no shell between the signal and the agent"
    shell, flag, script = container["lifecycle"]["preStop"]["exec"]["command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    assert script.startswith("kill -TERM 1;") and "while kill -0 1" in script
    assert "replicas" not in manifests.get("Deployment", "agent")["spec"], "KEDA sets it"
    assert "FARM_AGENT_ID" not in manifests.environment(container), "pods would share one id"
    advertised = settings.session_advertise_host
    assert advertised == "10.1.2.3", "Envoy reaches sessions at the pod's address"
    assert container_port(container, "sessions") == settings.session_port


def test_other_services_get_their_grace_and_the_audit_flush(manifests: Manifests) -> None:
    for service in SETTINGS.keys() - {"agent"}:
        grace = service_settings(manifests, service).grace_seconds
        period = manifests.pod_spec(service).get("terminationGracePeriodSeconds", 30)
        assert period >= grace + AUDIT_FLUSH_SECONDS, service


def test_keda_scales_agents_on_every_priority_consumer(manifests: Manifests) -> None:
    scaled = manifests.get("ScaledObject", "agent")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"name": "agent"}
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    agent = service_settings(manifests, "agent")
    assert isinstance(agent, AgentSettings)
    consumers = set()
    for trigger in spec["triggers"]:
        assert trigger["type"] == "nats-jetstream"
        metadata: dict[str, Any] = trigger["metadata"]
        assert all(isinstance(value, str) for value in metadata.values())
        assert metadata["stream"] == TASK_STREAM
        assert metadata["account"] == "$G"
        assert metadata["lagThreshold"] == str(agent.concurrency)
        host, _, port = metadata["natsServerMonitoringEndpoint"].rpartition(":")
        # KEDA reaches each node as <server_name>.<endpoint>: nats-0.nats.<namespace>...
        assert host == f"nats.{kustomization()['namespace']}.svc.cluster.local"
        manifests.service_port("nats", int(port))
        consumers.add(metadata["consumer"])
    assert consumers == {consumer_name(ANY_REGION, priority) for priority in Priority}


def test_only_envoy_may_reach_auths_edge_check(manifests: Manifests) -> None:
    auth_labels = manifests.get("Deployment", "auth")["spec"]["template"]["metadata"]["labels"]
    envoy_labels = manifests.get("Deployment", "envoy")["spec"]["template"]["metadata"]["labels"]
    policies = [
        policy
        for policy in manifests.objects
        if policy["kind"] == "NetworkPolicy"
        and policy["spec"]["podSelector"]["matchLabels"].items() <= auth_labels.items()
    ]
    assert policies, "no NetworkPolicy selects auth's pods"
    auth = manifests.container("auth")
    opened: dict[str, list[Any]] = {}
    for policy in policies:
        assert "Ingress" in policy["spec"]["policyTypes"]
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                opened.setdefault(port["port"], []).append(rule.get("from"))
    check = [port["name"] for port in auth["ports"] if port["containerPort"] == 7106]
    assert check == ["check"]
    (sources,) = opened.pop("check")
    assert sources == [{"podSelector": {"matchLabels": dict(envoy_labels)}}]
    # Every other port auth serves stays open to the cluster, as without a policy.
    assert {port["name"] for port in auth["ports"]} - {"check"} == set(opened)
    assert all(sources == [None] for sources in opened.values())
