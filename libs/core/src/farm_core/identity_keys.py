"""The farm's identity key pair: Ed25519, the private half with auth alone.

Auth signs identity tokens (and the farm's credentials) with the private key;
every other process verifies them with the public key only, so a host that holds
the public key (an agent's) cannot mint an identity. Both halves are PEM text:
the private key PKCS#8, the public key SubjectPublicKeyInfo, as
`openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write them.
"""

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import SecretStr

IDENTITY_KEY_FILE = "identity-key"
"""The private key's file under FARM_HOME (mode 0600) on a one-machine farm."""


def new_private_key() -> Ed25519PrivateKey:
    """A fresh random Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> str:
    """The private key as PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key (of a private key, or itself) as SubjectPublicKeyInfo PEM text."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_private_key(pem: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM text; ValueError for anything else."""
    key = serialization.load_pem_private_key(pem.strip().encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the identity key must be an Ed25519 private key")
    return key


def load_public_key(pem: str) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM text; ValueError for anything else."""
    key = serialization.load_pem_public_key(pem.strip().encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the identity public key must be an Ed25519 public key")
    return key


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """Reads the private key at `path`, writing a new one (mode 0600) if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        draft.write_text(private_pem(new_private_key()))
        draft.chmod(0o600)
        # link() fails if another process won the race; then its key stands.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return load_private_key(path.read_text())


PRIVATE_KEY_DESCRIPTION = (
    "PEM Ed25519 private key identities and credentials are signed with (auth's alone); "
    "default: FARM_HOME/identity-key."
)


def resolve_private_key(given: SecretStr | None, home: Path) -> str:
    """The private identity key (PEM): `given` (from the environment), or FARM_HOME's file."""
    if given is not None:
        return given.get_secret_value()
    return private_pem(load_or_create_private_key(home / IDENTITY_KEY_FILE))


def decode_signed(
    token: str,
    public_key: Ed25519PublicKey,
    issuer: str,
    audience: str,
    check_expiry: bool = True,
) -> dict[str, Any]:
    """The claims of an Ed25519-signed token from `issuer` for `audience`, its expiry checked.

    Raises jwt.PyJWTError saying what is wrong with it. Without `check_expiry` an
    expired token's claims are returned too (it must still carry an expiry).
    """
    return dict(
        jwt.decode(
            token,
            public_key,
            algorithms=["EdDSA"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "sub", "iss", "aud"], "verify_exp": check_expiry},
        )
    )
