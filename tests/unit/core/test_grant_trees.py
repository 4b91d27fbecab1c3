"""Grants in a Merkle tree: one signature for a group, each grant good for its own owner only."""

import base64
import json
import time

import pytest

from farm_core import grant_tree
from farm_core.errors import PermissionDenied
from farm_core.grants import NONCE_BYTES, TREE_PREFIX, GrantSigner, GrantVerifier, UploadGrant
from farm_core.identity_keys import new_private_key, private_pem
from tests.helpers import TEST_GRANT_KEY, TEST_GRANT_PUBLIC_KEY

SIGNER = GrantSigner(TEST_GRANT_KEY)
TASKS = [UploadGrant(f"task-{index}", "acme", 1000 + index) for index in range(7)]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tree_grants(lifetime: float = 600, signer: GrantSigner = SIGNER) -> list[str]:
    return signer.sign_tree([(task, lifetime) for task in TASKS])


def parts(grant: str) -> tuple[bytes, bytes, str]:
    """A tree grant's leaf, path and root token."""
    _, leaf, path, root_token = grant.split(".", 3)
    return unb64(leaf), unb64(path), root_token


def joined(leaf: bytes, path: bytes, root_token: str) -> str:
    return f"{TREE_PREFIX}{b64(leaf)}.{b64(path)}.{root_token}"


def refused(grant: str, owner_id: str = "task-0", tenant: str = "acme") -> str:
    with pytest.raises(PermissionDenied) as error:
        GrantVerifier(TEST_GRANT_PUBLIC_KEY).verify(grant, owner_id, tenant, "header.grant")
    return error.value.message


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 13, 1000])
def test_every_leaf_path_leads_to_the_root(size: int) -> None:
    leaves = [f"leaf-{index}".encode() for index in range(size)]

    root, paths = grant_tree.build([grant_tree.leaf_hash(leaf) for leaf in leaves])

    assert {
        grant_tree.root_from_path(leaf, path) for leaf, path in zip(leaves, paths, strict=True)
    } == {root}


def test_each_grant_of_a_group_verifies_for_its_own_task_only() -> None:
    grants = tree_grants()
    verifier = GrantVerifier(TEST_GRANT_PUBLIC_KEY)

    for task, grant in zip(TASKS, grants, strict=True):
        assert grant.startswith(TREE_PREFIX)
        granted = verifier.verify(grant, task.owner_id, "acme", "header.grant")
        assert (granted.owner_id, granted.max_artifact_bytes) == (
            task.owner_id,
            task.max_artifact_bytes,
        )
        assert granted.expire_time > time.time()
    assert "not 'task-1'" in refused(grants[0], owner_id="task-1")


def test_a_group_of_one_gets_a_single_grant() -> None:
    (grant,) = SIGNER.sign_tree([(TASKS[0], 600)])

    assert not grant.startswith(TREE_PREFIX)
    assert GrantVerifier(TEST_GRANT_PUBLIC_KEY).verify(grant, "task-0", "acme", "g").owner_id


def test_a_single_grant_still_verifies_beside_tree_grants() -> None:
    verifier = GrantVerifier(TEST_GRANT_PUBLIC_KEY)
    verifier.verify(tree_grants()[0], "task-0", "acme", "g")

    assert verifier.verify(SIGNER.sign(TASKS[3], 600), "task-3", "acme", "g").owner_id == "task-3"


def test_a_grant_for_another_tenant_is_refused() -> None:
    assert "of tenant 'acme', not 'task-0' of tenant 'umbrella'" in refused(
        tree_grants()[0], tenant="umbrella"
    )


def test_a_leaf_rewritten_for_another_tenant_or_task_is_refused() -> None:
    leaf, path, root_token = parts(tree_grants()[0])
    nonce, fields = leaf[:NONCE_BYTES], json.loads(leaf[NONCE_BYTES:])

    for changed in (["task-0", "umbrella", *fields[2:]], ["task-9", "acme", *fields[2:]]):
        forged = joined(
            nonce + json.dumps(changed, separators=(",", ":")).encode(), path, root_token
        )
        assert "does not lead to its root" in refused(forged, *changed[:2])


def test_a_leaf_with_a_raised_quota_or_expiry_is_refused() -> None:
    leaf, path, root_token = parts(tree_grants()[0])
    nonce, fields = leaf[:NONCE_BYTES], json.loads(leaf[NONCE_BYTES:])

    for changed in ([*fields[:2], 0, fields[3]], [*fields[:3], fields[3] + 3600]):
        forged = joined(
            nonce + json.dumps(changed, separators=(",", ":")).encode(), path, root_token
        )
        assert "does not lead to its root" in refused(forged)


def test_a_wrong_path_is_refused() -> None:
    leaf, path, root_token = parts(tree_grants()[0])
    flipped = bytes([path[0], path[1] ^ 1]) + path[2:]
    other_side = bytes([1 - path[0]]) + path[1:]

    assert "does not lead to its root" in refused(joined(leaf, flipped, root_token))
    assert "does not lead to its root" in refused(joined(leaf, other_side, root_token))
    assert "does not lead to its root" in refused(joined(leaf, path[:-33], root_token))
    assert "malformed" in refused(joined(leaf, path[:-1], root_token))
    assert "malformed" in refused(joined(leaf, bytes([7]) + path[1:], root_token))


def test_a_leaf_swapped_onto_another_grants_path_is_refused() -> None:
    grants = tree_grants()
    leaf_0, _, root_token = parts(grants[0])
    _, path_1, _ = parts(grants[1])

    assert "does not lead to its root" in refused(joined(leaf_0, path_1, root_token))


def test_a_siblings_grant_cannot_be_made_from_a_grant_and_the_siblings_fields() -> None:
    """Task 1's leaf is task 0's sibling: its hash is in task 0's path, but not its nonce."""
    leaf_0, path_0, root_token = parts(tree_grants()[0])
    fields_1 = json.loads(leaf_0[NONCE_BYTES:])
    fields_1[:3] = ["task-1", "acme", 1001]
    path_1 = bytes([0]) + grant_tree.leaf_hash(leaf_0) + path_0[33:]
    body_1 = json.dumps(fields_1, separators=(",", ":")).encode()

    for nonce in (leaf_0[:NONCE_BYTES], bytes(NONCE_BYTES)):
        assert "does not lead to its root" in refused(
            joined(nonce + body_1, path_1, root_token), "task-1"
        )


def test_an_expired_tree_grant_is_refused() -> None:
    assert "expired" in refused(tree_grants(lifetime=-1)[0])


def test_a_tree_signed_with_another_key_is_refused() -> None:
    other = GrantSigner(private_pem(new_private_key()))

    assert "grant refused" in refused(tree_grants(signer=other)[0])


def test_a_root_token_alone_is_not_a_grant() -> None:
    _, _, root_token = parts(tree_grants()[0])

    assert "grant refused" in refused(root_token)


def test_a_tampered_root_token_is_refused_after_the_genuine_one_was_taken() -> None:
    verifier = GrantVerifier(TEST_GRANT_PUBLIC_KEY)
    grant = tree_grants()[0]
    verifier.verify(grant, "task-0", "acme", "g")

    with pytest.raises(PermissionDenied, match="grant refused"):
        verifier.verify(grant[:-4] + "AAAA", "task-0", "acme", "g")


@pytest.mark.parametrize(
    "leaf", [b"", b"x" * NONCE_BYTES + b"{}", b"x" * NONCE_BYTES + b'["a","b",true,1]']
)
def test_a_malformed_leaf_is_refused(leaf: bytes) -> None:
    _, path, root_token = parts(tree_grants()[0])

    assert "malformed" in refused(joined(leaf, path, root_token))


# A grant in a tree of three made by the signer before its leaves and paths were written
# in one pass (task-2 of acme, quota 1002, expiring in 2106), and its key's public half.
EARLIER_GRANT = (
    "m1.I85CLr80cHkpUaOFCGvhv1sidGFzay0yIiwiYWNtZSIsMTAwMiw0MzE5MzU4MjIwXQ.ALbHzFT4o_qVnSzL4t"
    "Pk7uGxlAh3zNpt4KDBSfDYQeH_.eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJmYXJtLXNjaGVk"
    "dWxlciIsImF1ZCI6ImZhcm0tZ3JhbnQtcm9vdCIsInN1YiI6IlByZ2J1YTRPWXVRd0dVT1RuMUUtTV8ybGk0QnZJ"
    "YjFMdnZPSURsdGo5T0EiLCJpYXQiOjE3OTY0NzgyMjAsImV4cCI6NDMxOTM1ODIyMH0.h24SdhTpGZzjXsEa0v9W"
    "kNU26oacDJnOE0Okmv5b0Zb_Zqw_GYPLE4TkeLVQAvPzfS3_LBSixo0B8Ygj0mLsAw"
)
EARLIER_GRANT_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAWfCgVshL4QgXct83lUZ+HUTyIWMo5SUKdbyFxKO+Dks=
-----END PUBLIC KEY-----
"""


def test_a_grant_signed_by_the_earlier_signer_still_verifies() -> None:
    granted = GrantVerifier(EARLIER_GRANT_PUBLIC_KEY).verify(EARLIER_GRANT, "task-2", "acme", "g")

    assert (granted.max_artifact_bytes, granted.expire_time) == (1002, 4319358220.0)


@pytest.mark.parametrize("size", [2, 3, 5, 6, 7, 1000, 1001])
def test_paths_are_each_leafs_siblings_bottom_up(size: int) -> None:
    hashes = [grant_tree.leaf_hash(f"leaf-{index}".encode()) for index in range(size)]
    levels = [hashes]
    while len(levels[-1]) > 1:
        level = levels[-1]
        levels.append(
            [grant_tree.node_hash(*level[at : at + 2]) for at in range(0, len(level) - 1, 2)]
            + level[len(level) - len(level) % 2 :]
        )

    _, paths = grant_tree.build(hashes)

    for index, path in enumerate(paths):
        expected, at = b"", index
        for level in levels[:-1]:
            sibling = at ^ 1
            if sibling < len(level):
                expected += bytes((0 if sibling < at else 1,)) + level[sibling]
            at //= 2
        assert path == expected


def test_a_groups_leaves_name_their_own_task_tenant_and_quota_in_json() -> None:
    grants = SIGNER.sign_tree(
        [(UploadGrant("task-\u00e9", 'te"nant', 0), 600), (UploadGrant("t", "other", 5), 600)]
    )

    first, second = (json.loads(parts(grant)[0][NONCE_BYTES:]) for grant in grants)
    assert (first[:3], second[:3]) == (["task-\u00e9", 'te"nant', 0], ["t", "other", 5])
