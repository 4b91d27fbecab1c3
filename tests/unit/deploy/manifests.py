"""deploy/k8s read as kustomize would build it: its objects, and the parts tests look at."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from farm_cli.launcher.config import find_project_root
from farm_core.settings import FarmSettings
from tests.unit.deploy.service_settings import read_settings

ROOT = find_project_root(Path(__file__).parent)
K8S = ROOT / "deploy" / "k8s"

# What a container gets from a Secret or the pod, as the test stands in for it.
FIELD_VALUES = {"status.podIP": "10.1.2.3", "metadata.name": "pod-0"}
SECRET_PLACEHOLDER = "a-secret-value-of-forty-characters-------"
# Secrets whose value has a form the settings check, as the kustomization's header makes them.
SECRET_VALUES = {"database-url": "postgresql://farm:PASSWORD@postgres.example:5432/farm"}


def kustomization() -> dict[str, Any]:
    """deploy/k8s/kustomization.yaml."""
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def generated_config_maps() -> list[dict[str, Any]]:
    """The ConfigMaps of the kustomization's configMapGenerator, with their files' text."""
    maps = []
    for generator in kustomization().get("configMapGenerator", []):
        data = {}
        for entry in generator["files"]:
            key, _, source = entry.rpartition("=")
            data[key or Path(source).name] = (K8S / source).read_text()
        maps.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}}
            | {"data": data}
        )
    return maps


def load_objects() -> list[dict[str, Any]]:
    """Every object the kustomization makes, generated ConfigMaps included."""
    objects: list[dict[str, Any]] = []
    for resource in kustomization()["resources"]:
        objects.extend(doc for doc in yaml.safe_load_all((K8S / resource).read_text()) if doc)
    return objects + generated_config_maps()


@dataclass(frozen=True)
class Manifests:
    """The objects of deploy/k8s by kind and name."""

    objects: list[dict[str, Any]]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The one object of `kind` named `name`."""
        (found,) = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        return found

    def names(self, kind: str) -> set[str]:
        """The names of the objects of `kind`."""
        return {o["metadata"]["name"] for o in self.objects if o["kind"] == kind}

    def container(self, workload: str, kind: str = "Deployment") -> dict[str, Any]:
        """The main container of a workload (the one named like it)."""
        spec = self.get(kind, workload)["spec"]["template"]["spec"]
        (found,) = [c for c in spec["containers"] if c["name"] == workload]
        assert isinstance(found, dict)
        return found

    def pod_spec(self, workload: str, kind: str = "Deployment") -> dict[str, Any]:
        """The pod template's spec of a workload."""
        spec: dict[str, Any] = self.get(kind, workload)["spec"]["template"]["spec"]
        return spec

    def environment(self, container: dict[str, Any]) -> dict[str, str]:
        """The container's environment as it would be: ConfigMaps' values, stand-in secrets."""
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            assert set(source) == {"configMapRef"}, "only ConfigMaps are read whole"
            env.update(self.get("ConfigMap", source["configMapRef"]["name"])["data"])
        for variable in container.get("env", []):
            env[variable["name"]] = self._value(variable)
        return env

    def _value(self, variable: dict[str, Any]) -> str:
        if "value" in variable:
            return str(variable["value"])
        source = variable["valueFrom"]
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            return str(self.get("ConfigMap", ref["name"])["data"][ref["key"]])
        if "fieldRef" in source:
            return FIELD_VALUES[source["fieldRef"]["fieldPath"]]
        assert "secretKeyRef" in source, f"unexpected source of {variable['name']}"
        return SECRET_VALUES.get(source["secretKeyRef"]["key"], SECRET_PLACEHOLDER)

    def secret_of(self, container: dict[str, Any], name: str) -> tuple[str, str] | None:
        """(Secret name, key) the container's variable `name` comes from; None: not a secret."""
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if variable["name"] == name and ref:
                return ref["name"], ref["key"]
        return None

    def secret_keys(self) -> Iterator[tuple[str, str]]:
        """(Secret name, key) of every secretKeyRef."""
        for obj in self.objects:
            if obj["kind"] not in {"Deployment", "StatefulSet"}:
                continue
            for container in obj["spec"]["template"]["spec"]["containers"]:
                for variable in container.get("env", []):
                    ref = variable.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        yield ref["name"], ref["key"]

    def service_port(self, name: str, port: int) -> dict[str, Any]:
        """The port entry of Service `name` that serves `port`."""
        (found,) = [p for p in self.get("Service", name)["spec"]["ports"] if p["port"] == port]
        assert isinstance(found, dict)
        return found


def container_port(container: dict[str, Any], name: str) -> int:
    """The number of the container's port called `name`."""
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    assert isinstance(number, int)
    return number


def service_settings(manifests: Manifests, service: str) -> FarmSettings:
    """The settings `service` runs with from its container's environment here."""
    return read_settings(service, manifests.environment(manifests.container(service)))
