"""The descriptors server reflection answers with: those of the reflected services alone.

grpc_reflection reads the process's default descriptor pool, which holds every proto
file the service imported: through Envoy, the scheduler also described internal
messages and services (farm.queue.v1.WorkItem, farm.storage.v1.ArtifactIngestService)
to any key, though it listed only the public API. This pool holds the files of the
services given and the files they import, nothing else.
"""

from collections.abc import Iterable

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor


def reflection_pool(service_names: Iterable[str]) -> descriptor_pool.DescriptorPool:
    """A pool of the named services' files (from the default pool) and their imports."""
    default = descriptor_pool.Default()
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in added:
            return
        added.add(file.name)
        for dependency in file.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.Add(proto)

    for name in service_names:
        add(default.FindServiceByName(name).file)
    return pool
