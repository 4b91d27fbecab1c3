"""The request by which the scheduler has storage delete the artifacts of tasks past retention.

The scheduler's retention sweep (farm_scheduler.retention) sends it as a core NATS
request on ARTIFACTS_EXPIRE_SUBJECT, naming the owners (tenant, task or session id)
whose artifacts are to go; one storage replica (a queue group) deletes their rows,
then every S3 object under their keys, and answers with how many rows it deleted.
The scheduler deletes its own rows only after that answer, so a failed or
unanswered request is simply sent again on the next pass (deleting is idempotent).
A failed answer may name the owners it failed for (`failed`): the scheduler then
keeps only those; without that list (an older storage), it keeps them all.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass

ARTIFACTS_EXPIRE_SUBJECT = "artifacts.expire"
"""Core NATS subject of the request; the storage replicas answer it as one queue group."""


@dataclass(frozen=True)
class ArtifactOwner:
    """Whose artifacts: a tenant's task (or session, for its recording) by id."""

    tenant: str
    owner_id: str


def encode_expiry(owners: Sequence[ArtifactOwner]) -> bytes:
    """The request's body: the owners whose artifacts go."""
    return json.dumps({"owners": [[o.tenant, o.owner_id] for o in owners]}).encode()


def decode_expiry(data: bytes) -> list[ArtifactOwner]:
    """The owners of a request's body; ValueError if it is not one."""
    body = json.loads(data)
    owners = body.get("owners") if isinstance(body, dict) else None
    if not isinstance(owners, list):
        raise ValueError("an artifact expiry is a JSON object with a list of owners")
    decoded = []
    for owner in owners:
        if (
            not isinstance(owner, list)
            or len(owner) != 2
            or not all(isinstance(part, str) and part and "/" not in part for part in owner)
            or owner[1].startswith("_")
        ):
            # Storage keeps baselines and profiles under `<tenant>/_...`: never an owner's.
            raise ValueError(
                "an artifact owner is [tenant, id], neither empty nor with '/', "
                "its id not starting with '_'"
            )
        decoded.append(ArtifactOwner(owner[0], owner[1]))
    return decoded


def encode_answer(
    deleted: int, error: str = "", failed: Sequence[ArtifactOwner] | None = None
) -> bytes:
    """The answer: how many artifacts were deleted, or why it failed, and for whom if known."""
    body: dict[str, object] = {"deleted": deleted, "error": error}
    if failed is not None:
        body["failed"] = [[o.tenant, o.owner_id] for o in failed]
    return json.dumps(body).encode()


def decode_answer(data: bytes) -> int:
    """How many artifacts the answer says were deleted; ValueError if it reports a failure."""
    body = json.loads(data)
    if not isinstance(body, dict) or not isinstance(body.get("deleted"), int):
        raise ValueError("a malformed answer to an artifact expiry")
    if body.get("error"):
        raise ValueError(f"storage could not delete the artifacts: {body['error']}")
    return int(body["deleted"])


def refused_owners(data: bytes, owners: Sequence[ArtifactOwner]) -> list[ArtifactOwner]:
    """Those of the request's `owners` the answer says could not be deleted; [] if all went.

    A failure that names no owners (or an older storage's) refuses them all; ValueError if
    the answer is malformed.
    """
    body = json.loads(data)
    if not isinstance(body, dict) or not isinstance(body.get("deleted"), int):
        raise ValueError("a malformed answer to an artifact expiry")
    if not body.get("error"):
        return []
    failed = body.get("failed")
    if not isinstance(failed, list) or not failed:
        return list(owners)
    named = {tuple(owner) for owner in failed if isinstance(owner, list)}
    # Naming none of the request's owners says nothing of them: all are kept.
    return [o for o in owners if (o.tenant, o.owner_id) in named] or list(owners)
