"""Merkle trees over grant leaves: one signature vouches for a whole group of grants.

A leaf hash and a node hash are SHA-256 with different first bytes (0x00 and 0x01,
as RFC 6962), so an inner node can never pass for a leaf. A path is the siblings
from a leaf up to the root, each step one side byte (which side the sibling is
on) and its 32-byte hash; a node left without a sibling at a level goes up as it
is, so no leaf is ever duplicated.
"""

import hashlib
from collections.abc import Sequence

HASH_BYTES = 32
STEP_BYTES = 1 + HASH_BYTES
MAX_STEPS = 32
"""More levels than any group holds (2**32 leaves): a longer path is refused unread."""
_LEFT = 0
"""The sibling is on the left: the node is hash(sibling, this)."""
_RIGHT = 1
"""The sibling is on the right: the node is hash(this, sibling)."""
_LEFT_BYTE, _RIGHT_BYTE = bytes((_LEFT,)), bytes((_RIGHT,))


class PathError(ValueError):
    """A path that is not a sequence of well-formed steps."""


def leaf_hash(leaf: bytes) -> bytes:
    """The tree's hash of one leaf's bytes."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The tree's hash of an inner node with children `left` and `right`."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def build(leaf_hashes: Sequence[bytes]) -> tuple[bytes, list[bytes]]:
    """The root over `leaf_hashes` (at least one) and each leaf's path to it."""
    if not leaf_hashes:
        raise ValueError("a tree needs at least one leaf")
    levels = [list(leaf_hashes)]
    while len(level := levels[-1]) > 1:
        parents = [
            node_hash(level[start], level[start + 1]) for start in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            parents.append(level[-1])
        levels.append(parents)
    # From the root down, each node's path is its own step and then its parent's
    # path: the leaves under a node share the bytes above it, so a tree of n leaves
    # is about 2n concatenations, not one step appended per leaf and level.
    paths = [b""]
    for level in reversed(levels[:-1]):
        last = len(level) - 1
        paths = [
            (
                (_RIGHT_BYTE + level[index + 1] if index < last else b"")
                if index % 2 == 0
                else _LEFT_BYTE + level[index - 1]
            )
            + paths[index // 2]
            for index in range(len(level))
        ]
    return levels[-1][0], paths


def root_from_path(leaf: bytes, path: bytes) -> bytes:
    """The root that `leaf`'s bytes lead to along `path`; PathError for a malformed path."""
    if len(path) % STEP_BYTES or len(path) > MAX_STEPS * STEP_BYTES:
        raise PathError(f"a path is up to {MAX_STEPS} steps of {STEP_BYTES} bytes")
    node = leaf_hash(leaf)
    for start in range(0, len(path), STEP_BYTES):
        side, sibling = path[start], path[start + 1 : start + STEP_BYTES]
        if side == _RIGHT:
            node = node_hash(node, sibling)
        elif side == _LEFT:
            node = node_hash(sibling, node)
        else:
            raise PathError(f"a path step's side is {_LEFT} or {_RIGHT}, not {side}")
    return node
