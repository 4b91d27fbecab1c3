"""Upload grants: the scheduler's signed word that an agent was handed a task or a session.

The scheduler puts a grant in each WorkItem it publishes and in each OpenSessionOrder
it sends; the agent shows it with every upload (UploadHeader.grant) and every event
(AgentEvent.grant). Storage stores an artifact only under the task or session and the
tenant its grant names, and the scheduler applies an event only with the grant of its
task: an agent's credential alone uploads nothing. A grant also carries the tenant's
artifact byte quota, so storage learns it without asking auth, and the names of
the tenant's profiles and baselines its owner may use (`names`, see GrantNames):
storage refuses a baseline or profile call for any other name.

Grants are signed with the scheduler's own Ed25519 key (not auth's identity key):
storage holds only its public half. A grant is not an identity: its issuer and
audience differ, and it is verified with another key.

A grant has one of two forms (docs/security.md, "Upload grants"):

- single: a JWT whose subject is the owner, signed for it alone;
- in a tree (`m1.<leaf>.<path>.<root token>`): a group's grants (a batch's tasks) are
  the leaves of one Merkle tree (grant_tree) whose root alone is signed, as a JWT of
  another audience. A task's grant is its leaf (a random nonce, the owner, tenant,
  quota, expiry and, when it names any, its names), its path and the root token;
  a verifier hashes the leaf up the path and checks the root's signature, once per
  root. The nonce keeps each grant a secret: knowing another leaf's fields and
  hash is not knowing its grant.
"""

import base64
import binascii
import functools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _json_string
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import SecretStr

from farm_core import grant_tree
from farm_core.errors import PermissionDenied
from farm_core.identity_keys import (
    decode_signed,
    load_or_create_private_key,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
)

GRANT_KEY_FILE = "grant-key"
"""The scheduler's grant signing key under FARM_HOME (mode 0600) on a one-machine farm."""
_ISSUER = "farm-scheduler"
_AUDIENCE = "farm-grant"
_ROOT_AUDIENCE = "farm-grant-root"
"""A tree's root token: never a grant by itself, as its audience is not a grant's."""
_ALGORITHM = "EdDSA"
TREE_PREFIX = "m1."
"""How a grant in a tree begins (a JWT begins with its header, `eyJ`)."""
NONCE_BYTES = 16
ROOTS_KEPT = 1024
"""How many roots whose signature held a verifier remembers (a batch's tasks share one)."""


_LOAD_PROFILE = "p:"
_SAVE_PROFILE = "P:"
_BASELINE = "b:"


class GrantNames:
    """How a grant writes the profiles and baselines it names: one short string each."""

    @staticmethod
    def profile(name: str, save: bool) -> str:
        """Profile `name`, to load, and to save too with `save`."""
        return (_SAVE_PROFILE if save else _LOAD_PROFILE) + name

    @staticmethod
    def baseline(name: str) -> str:
        """Baseline `name` (any URL and viewport), to read and to make."""
        return _BASELINE + name


@dataclass(frozen=True)
class UploadGrant:
    """What a grant vouches for: an owner (task or session id), tenant, quota and names.

    The names are the profiles and baselines its owner may use.
    """

    owner_id: str
    tenant: str
    # The tenant's maxArtifactBytes when the grant was made; 0 is unlimited.
    max_artifact_bytes: int = 0
    # When it stops being valid, in seconds since the epoch (0: not read from a token).
    expire_time: float = 0.0
    # The profiles and baselines it names (GrantNames); None: a grant older than names.
    names: frozenset[str] | None = None

    def may_load_profile(self, name: str) -> bool:
        """Whether it names profile `name` (to load or to save)."""
        names = self.names or frozenset()
        return _LOAD_PROFILE + name in names or _SAVE_PROFILE + name in names

    def may_save_profile(self, name: str) -> bool:
        """Whether it names profile `name` to save."""
        return _SAVE_PROFILE + name in (self.names or frozenset())

    def may_use_baseline(self, name: str) -> bool:
        """Whether it names baseline `name`."""
        return _BASELINE + name in (self.names or frozenset())


class GrantVerifier:
    """Checks grants with the public half of the scheduler's grant key."""

    def __init__(self, public_key: Ed25519PublicKey | str) -> None:
        self._public_key = (
            load_public_key(public_key) if isinstance(public_key, str) else public_key
        )
        # Root tokens whose signature held (a refusal is not kept): the other grants
        # of a tree skip the Ed25519 check; their expiry is still checked.
        self._roots = functools.lru_cache(maxsize=ROOTS_KEPT)(self._read_root)

    def read(self, grant: str, field: str) -> UploadGrant:
        """What a valid `grant` vouches for; PermissionDenied naming `field` otherwise."""
        if not grant:
            raise PermissionDenied(f"{field}: must be the grant the task or session came with")
        if grant.startswith(TREE_PREFIX):
            return self._read_in_tree(grant, field)
        try:
            claims = decode_signed(grant, self._public_key, _ISSUER, _AUDIENCE)
        except jwt.PyJWTError as error:
            raise PermissionDenied(f"{field}: grant refused: {error}") from error
        return UploadGrant(
            owner_id=str(claims["sub"]),
            tenant=str(claims.get("tenant", "")),
            max_artifact_bytes=_quota(claims.get("maxArtifactBytes")),
            expire_time=float(claims["exp"]),
            names=_names(claims.get("names")),
        )

    def _read_in_tree(self, grant: str, field: str) -> UploadGrant:
        """What a valid grant in a tree vouches for; PermissionDenied naming `field` otherwise."""
        try:
            _, leaf_text, path_text, root_token = grant.split(".", 3)
            leaf, path = _unb64(leaf_text), _unb64(path_text)
            root = grant_tree.root_from_path(leaf, path)
            signed_root, root_expire_time, named = self._roots(root_token)
            granted = _parse_leaf(leaf, named)
        except (ValueError, binascii.Error) as error:
            raise PermissionDenied(f"{field}: grant refused: malformed: {error}") from error
        except jwt.PyJWTError as error:
            raise PermissionDenied(f"{field}: grant refused: {error}") from error
        if root != signed_root:
            raise PermissionDenied(f"{field}: grant refused: its path does not lead to its root")
        if time.time() >= min(granted.expire_time, root_expire_time):
            raise PermissionDenied(f"{field}: grant refused: Signature has expired")
        return granted

    def _read_root(self, root_token: str) -> tuple[bytes, float, bool]:
        """The root a valid root token signs, its expiry, and whether its leaves carry names.

        jwt.PyJWTError if it is not valid.
        """
        claims = decode_signed(root_token, self._public_key, _ISSUER, _ROOT_AUDIENCE)
        return _unb64(str(claims["sub"])), float(claims["exp"]), claims.get("named") is True

    def verify(self, grant: str, owner_id: str, tenant: str, field: str) -> UploadGrant:
        """The grant for `owner_id` of `tenant`; PermissionDenied naming `field` otherwise."""
        granted = self.read(grant, field)
        if granted.owner_id != owner_id or granted.tenant != tenant:
            raise PermissionDenied(
                f"{field}: the grant is for {granted.owner_id!r} of tenant {granted.tenant!r}, "
                f"not {owner_id!r} of tenant {tenant!r}"
            )
        return granted


class GrantSigner(GrantVerifier):
    """Signs grants with the scheduler's private grant key."""

    def __init__(self, private_key: Ed25519PrivateKey | str) -> None:
        key = load_private_key(private_key) if isinstance(private_key, str) else private_key
        super().__init__(key.public_key())
        self._private_key = key

    def sign(self, grant: UploadGrant, lifetime_seconds: float) -> str:
        """A grant good for `lifetime_seconds` from now."""
        now = time.time()
        claims: dict[str, object] = {
            "iss": _ISSUER,
            "aud": _AUDIENCE,
            "sub": grant.owner_id,
            "tenant": grant.tenant,
            "iat": int(now),
            "exp": int(now + lifetime_seconds),
        }
        if grant.max_artifact_bytes:
            claims["maxArtifactBytes"] = grant.max_artifact_bytes
        if grant.names is not None:
            # Even empty: a grant without the claim is older than names.
            claims["names"] = sorted(grant.names)
        return jwt.encode(claims, self._private_key, algorithm=_ALGORITHM)

    def sign_tree(self, grants: Sequence[tuple[UploadGrant, float]]) -> list[str]:
        """Grants of `grants` (each good for its lifetime in seconds from now) under one signature.

        One Merkle tree over their leaves, its root signed once; a group of one is
        a single grant.
        """
        if len(grants) == 1:
            grant, lifetime_seconds = grants[0]
            return [self.sign(grant, lifetime_seconds)]
        now = time.time()
        nonces = os.urandom(NONCE_BYTES * len(grants))
        # A leaf is its nonce, then [owner, tenant, quota, expiry] in compact JSON (as
        # json.dumps writes it), and its names as a fifth item when it has any (a leaf
        # without them stays readable by a storage older than names); a group's grants
        # mostly share their tenant, written once.
        tenants: dict[str, str] = {}
        leaves = []
        for index, (grant, lifetime_seconds) in enumerate(grants):
            tenant = tenants.get(grant.tenant)
            if tenant is None:
                tenant = tenants[grant.tenant] = _json_string(grant.tenant)
            fields = (
                f"[{_json_string(grant.owner_id)},{tenant},"
                f"{int(grant.max_artifact_bytes)},{int(now + lifetime_seconds)}"
                f"{_json_names(grant.names)}]"
            )
            leaves.append(nonces[index * NONCE_BYTES : (index + 1) * NONCE_BYTES] + fields.encode())
        root, paths = grant_tree.build([grant_tree.leaf_hash(leaf) for leaf in leaves])
        claims: dict[str, object] = {
            "iss": _ISSUER,
            "aud": _ROOT_AUDIENCE,
            "sub": _b64(root),
            "iat": int(now),
            "exp": max(int(now + lifetime) for _, lifetime in grants),
        }
        if any(grant.names is not None for grant, _ in grants):
            # Its leaves are as new as names: one without them names nothing.
            claims["named"] = True
        root_token = jwt.encode(claims, self._private_key, algorithm=_ALGORITHM)
        return [
            f"{TREE_PREFIX}{_b64(leaf)}.{path}.{root_token}"
            for leaf, path in zip(leaves, _b64_each(paths), strict=True)
        ]


def _parse_leaf(leaf: bytes, named: bool) -> UploadGrant:
    """What a leaf's bytes say; ValueError for anything but a leaf sign_tree wrote.

    `named`: its root's leaves carry names (one without them names nothing).
    """
    fields = json.loads(leaf[NONCE_BYTES:])
    if (
        len(leaf) <= NONCE_BYTES
        or not isinstance(fields, list)
        or len(fields) not in (4, 5)
        or not all(isinstance(value, str) for value in fields[:2])
        or not all(type(value) is int for value in fields[2:4])
        or (len(fields) == 5 and not (named and _is_names(fields[4])))
    ):
        raise ValueError("a leaf is a nonce and [owner, tenant, quota, expiry, names?]")
    owner_id, tenant, max_artifact_bytes, expire_time = fields[:4]
    names = frozenset(fields[4]) if len(fields) == 5 else frozenset() if named else None
    return UploadGrant(
        owner_id, tenant, _quota(max_artifact_bytes), float(expire_time), names=names
    )


def _json_names(names: frozenset[str] | None) -> str:
    """A leaf's fifth item with its leading comma; "" for a grant that names nothing."""
    if not names:
        return ""
    return ",[" + ",".join(_json_string(name) for name in sorted(names)) + "]"


def _is_names(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


def _names(value: object) -> frozenset[str] | None:
    """A single grant's `names` claim; None for a grant older than names."""
    if value is None:
        return None
    return frozenset(value) if isinstance(value, list) and _is_names(value) else frozenset()


def _b64(data: bytes) -> str:
    """`data` in unpadded base64url, as JWTs write their parts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_each(parts: Sequence[bytes]) -> list[str]:
    """Each of `parts` in unpadded base64url, as _b64; one encoding when all fill whole blocks.

    Paths are whole steps of 33 bytes (three-byte blocks, no padding), so the
    encoding of their concatenation is theirs concatenated.
    """
    if any(len(part) % 3 for part in parts):
        return [_b64(part) for part in parts]
    text = _b64(b"".join(parts))
    encoded, start = [], 0
    for part in parts:
        end = start + len(part) // 3 * 4
        encoded.append(text[start:end])
        start = end
    return encoded


def _unb64(text: str) -> bytes:
    """The bytes of unpadded base64url `text`; binascii.Error if it is not that."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _quota(value: object) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def resolve_grant_key(given: SecretStr | None, home: Path) -> str:
    """The scheduler's private grant key (PEM): `given`, or FARM_HOME's file (made if absent)."""
    if given is not None:
        return given.get_secret_value()
    return private_pem(load_or_create_private_key(home / GRANT_KEY_FILE))


def resolve_grant_public_key(given: str | None, home: Path) -> str:
    """The grant key's public half (PEM): `given`, or that of FARM_HOME's key pair."""
    if given is not None:
        return given
    return public_pem(load_or_create_private_key(home / GRANT_KEY_FILE))
