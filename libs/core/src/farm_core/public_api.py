"""The farm's public API as the edge (Envoy) serves it: its gRPC services, for reflection.

Envoy routes server reflection to the scheduler, which answers it for all of these
services, so grpcurl and buf curl can list, describe and call the whole API at the
edge port without local proto files. farm.storage.v1.ArtifactIngestService (agents'
uploads) is internal: Envoy does not route it, and it is not listed here.
"""

from google.protobuf.descriptor import ServiceDescriptor

from farm.admin.v1 import admin_pb2
from farm.audit.v1 import audit_pb2
from farm.auth.v1 import auth_pb2
from farm.sessions.v1 import sessions_pb2
from farm.storage.v1 import artifacts_pb2, baselines_pb2, profiles_pb2
from farm.tasks.v1 import tasks_pb2

# Importing the stubs puts their files in the default descriptor pool, which the
# reflection service reads the descriptors from.
PUBLIC_SERVICE_DESCRIPTORS: tuple[ServiceDescriptor, ...] = (
    tasks_pb2.DESCRIPTOR.services_by_name["TaskService"],
    sessions_pb2.DESCRIPTOR.services_by_name["SessionService"],
    artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"],
    baselines_pb2.DESCRIPTOR.services_by_name["BaselineService"],
    profiles_pb2.DESCRIPTOR.services_by_name["ProfileService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"],
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
)

PUBLIC_SERVICES: tuple[str, ...] = tuple(s.full_name for s in PUBLIC_SERVICE_DESCRIPTORS)
"""Full names of the services Envoy routes and transcodes (envoy/envoy.yaml.j2)."""
