"""Every RPC the farm's services serve, as the generated descriptors name them."""

import importlib
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.descriptor import MethodDescriptor

import farm


def farm_methods() -> Iterator[MethodDescriptor]:
    """Every RPC of every farm.*.v1 service in the generated descriptors."""
    for root in map(Path, farm.__path__):
        for path in sorted(root.rglob("*_pb2.py")):
            name = ".".join(("farm", *path.relative_to(root).with_suffix("").parts))
            module = importlib.import_module(name)
            for service in module.DESCRIPTOR.services_by_name.values():
                yield from service.methods


def full_name(method: MethodDescriptor) -> str:
    """The gRPC path of `method`, e.g. "/farm.tasks.v1.TaskService/GetTask"."""
    return f"/{method.containing_service.full_name}/{method.name}"


ALL_METHODS = sorted(farm_methods(), key=full_name)
