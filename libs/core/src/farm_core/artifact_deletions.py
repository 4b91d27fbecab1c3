"""The message by which storage has the scheduler drop a cached result before deleting its artifact.

Storage sends it as a core NATS request on ARTIFACTS_DELETED_SUBJECT inside the
delete's transaction and commits only once a scheduler replica has answered:
that replica has by then cleared the cache key of the task that made the
artifact, so no later cache hit names the deleted artifact.
"""

import json

ARTIFACTS_DELETED_SUBJECT = "artifacts.deleted"
"""Core NATS subject of the request; the scheduler replicas answer it as one queue group."""


def encode_deletion(tenant: str, task_id: str) -> bytes:
    """The request's body: the tenant and the task whose artifact is deleted."""
    return json.dumps({"tenant": tenant, "taskId": task_id}).encode()


def decode_deletion(data: bytes) -> tuple[str, str]:
    """(tenant, task id) of a request's body; ValueError if it is not one."""
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError("an artifact deletion is a JSON object")
    tenant, task_id = body.get("tenant"), body.get("taskId")
    if not isinstance(tenant, str) or not isinstance(task_id, str) or not tenant or not task_id:
        raise ValueError("an artifact deletion names a tenant and a taskId")
    return tenant, task_id
