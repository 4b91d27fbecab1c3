"""deploy/k8s's NATS holds to the code: a three-node JetStream cluster, the current
users.conf, one login per service, TLS to clients and routes, and streams on every node.

No cluster here, as in test_k8s.py: the objects are read as kustomize would build them.
"""

import re
from typing import Any

from tests.unit.deploy.manifests import K8S, Manifests, service_settings
from tests.unit.deploy.nats_logins import (
    SERVICE_USERS,
    check_roles,
    current_config,
    password_variables,
)
from tests.unit.deploy.service_settings import SETTINGS


def test_nats_is_a_three_node_jetstream_cluster_named_by_pod(manifests: Manifests) -> None:
    nats = manifests.get("StatefulSet", "nats")
    assert nats["spec"]["replicas"] == 3
    assert nats["spec"]["serviceName"] == "nats"
    assert manifests.get("Service", "nats")["spec"]["publishNotReadyAddresses"] is True
    config = manifests.get("ConfigMap", "nats-config")["data"]["nats.conf"]
    assert "jetstream {" in config and "server_name: $POD_NAME" in config
    container = manifests.container("nats", "StatefulSet")
    routes = {manifests.environment(container)[v] for v in re.findall(r"\$(NATS_ROUTE_\d)", config)}
    login = "nats://route:$(NATS_ROUTE_PASSWORD)@"
    assert routes == {f"{login}nats-{n}.nats:6222" for n in range(3)}
    assert manifests.environment(container)["POD_NAME"] == "pod-0"
    assert {p["containerPort"] for p in container["ports"]} == {4222, 6222, 8222}
    assert "js-enabled-only" in container["livenessProbe"]["httpGet"]["path"]


def test_nats_users_config_map_is_the_current_render_of_the_role_table(
    manifests: Manifests,
) -> None:
    users = manifests.get("ConfigMap", "nats-users")["data"]["users.conf"]
    assert users == current_config(), (
        "deploy/k8s/nats/users.conf is stale; regenerate it with: "
        "farm nats-config -o deploy/k8s/nats/users.conf"
    )
    config = manifests.get("ConfigMap", "nats-config")["data"]["nats.conf"]
    assert "\ninclude users.conf\n" in config
    (volume,) = [
        v for v in manifests.pod_spec("nats", "StatefulSet")["volumes"] if v["name"] == "config"
    ]
    sources = {source["configMap"]["name"] for source in volume["projected"]["sources"]}
    assert sources == {"nats-config", "nats-users"}, "users.conf beside nats.conf"


def nats_password_secrets(manifests: Manifests) -> dict[str, tuple[str, str]]:
    """Each NATS user's password as the NATS pods get it: user -> (Secret, key)."""
    container = manifests.container("nats", "StatefulSet")
    found = {}
    for user, variable in password_variables().items():
        secret = manifests.secret_of(container, variable)
        assert secret is not None, f"NATS does not get {variable} from a Secret"
        found[user] = secret
    return found


def test_services_log_in_to_nats_as_their_own_user(manifests: Manifests) -> None:
    check_roles()
    passwords = nats_password_secrets(manifests)
    assert len(set(passwords.values())) == len(passwords), "one secret per user"
    for service in SETTINGS:
        container = manifests.container(service)
        user = SERVICE_USERS.get(service)
        environment = manifests.environment(container)
        if user is None:  # does not connect to NATS: no login to leak
            assert "NATS_USER" not in environment and "NATS_PASSWORD" not in environment
            continue
        assert environment.get("NATS_USER") == user, f"{service} has no NATS login"
        # The same secret NATS checks this user's password against.
        assert manifests.secret_of(container, "NATS_PASSWORD") == passwords[user], service
        assert service_settings(manifests, service).nats().user == user


def test_streams_are_kept_on_every_nats_node(manifests: Manifests) -> None:
    nodes = manifests.get("StatefulSet", "nats")["spec"]["replicas"]
    for service in SETTINGS:
        assert service_settings(manifests, service).nats_replicas == nodes, service


def nats_config_block(config: str, name: str) -> str:
    """The text of nats.conf's top-level block `name { ... }`."""
    match = re.search(rf"^{name} {{\n(.*?)^}}$", config, re.S | re.M)
    assert match, f"nats.conf has no {name} block"
    return match.group(1)


def test_nats_routes_log_in_with_a_secret_password_given_before_its_use(
    manifests: Manifests,
) -> None:
    config = manifests.get("ConfigMap", "nats-config")["data"]["nats.conf"]
    cluster = nats_config_block(config, "cluster")
    assert re.search(r"authorization \{\s+user: route\s+password: \$NATS_ROUTE_PASSWORD\s", cluster)
    container = manifests.container("nats", "StatefulSet")
    assert manifests.secret_of(container, "NATS_ROUTE_PASSWORD") == (
        "farm-secrets",
        "nats-route-password",
    )
    # Kubernetes expands $(NAME) only from variables listed before it.
    names = [variable["name"] for variable in container["env"]]
    for index in range(3):
        assert names.index("NATS_ROUTE_PASSWORD") < names.index(f"NATS_ROUTE_{index}")


def mounted_secret_files(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """Each file a container sees from a Secret volume: path -> 'secret/key'."""
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    files = {}
    for mount in container.get("volumeMounts", []):
        # A volume not in the pod's list is a volumeClaimTemplate's.
        secret = volumes.get(mount["name"], {}).get("secret")
        if secret is None:
            continue
        keys = [item["key"] for item in secret.get("items", [])] or ["tls.crt", "tls.key", "ca.crt"]
        for key in keys:
            files[f"{mount['mountPath']}/{key}"] = f"{secret['secretName']}/{key}"
    return files


def test_nats_speaks_tls_to_clients_and_routes_with_the_nats_tls_secret(
    manifests: Manifests,
) -> None:
    config = manifests.get("ConfigMap", "nats-config")["data"]["nats.conf"]
    container = manifests.container("nats", "StatefulSet")
    files = mounted_secret_files(manifests.pod_spec("nats", "StatefulSet"), container)
    client_tls = nats_config_block(config, "tls")
    route_tls = re.search(r"  tls \{\n(.*?)\n  \}", nats_config_block(config, "cluster"), re.S)
    assert route_tls and "verify: true" in route_tls.group(1), "routes must show certificates"
    for block, keys in ((client_tls, ("cert_file", "key_file")),
                        (route_tls.group(1), ("cert_file", "key_file", "ca_file"))):  # fmt: skip
        for key in keys:
            (path,) = re.findall(rf"{key}: (\S+)", block)
            assert files.get(path, "").startswith("nats-tls/"), f"{key} {path} is not mounted"
    assert "nats-tls" in (K8S / "kustomization.yaml").read_text()


def test_services_check_nats_with_the_ca_of_nats_tls_alone(manifests: Manifests) -> None:
    for service in SERVICE_USERS:
        container = manifests.container(service)
        path = manifests.environment(container).get("NATS_CA_FILE")
        assert path, f"{service} would connect to NATS without TLS"
        files = mounted_secret_files(manifests.pod_spec(service), container)
        assert files[path] == "nats-tls/ca.crt", service
        assert "nats-tls/tls.key" not in files.values(), f"{service} gets NATS's key"
        assert str(service_settings(manifests, service).nats().ca_file) == path
