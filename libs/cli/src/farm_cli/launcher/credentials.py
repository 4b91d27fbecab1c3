"""The local farm's secrets on disk: the bootstrap admin key and SeaweedFS's S3 key pair.

Each lives in one file under FARM_HOME, readable only by its owner (mode 0600), made
once and reused on every later start.
"""

import json
import os
import secrets
from pathlib import Path

from farm_cli.launcher.infra import S3Credentials

ADMIN_KEY_PREFIX = "bf_"


def write_private(path: Path, text: str) -> None:
    """Replaces `path` with `text`, mode 0600 from the first byte, never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as draft_file:
            draft_file.write(text)
        draft.replace(path)
    except BaseException:
        draft.unlink(missing_ok=True)
        raise


def new_admin_key() -> str:
    """A fresh bootstrap admin key."""
    return ADMIN_KEY_PREFIX + secrets.token_urlsafe(32)


def resolve_admin_key(path: Path, given: str | None) -> str:
    """The admin key: `given` (FARM_ADMIN_KEY), else the one in `path`, else a new one.

    The result is (re)written to `path` with mode 0600 so the CLI can find it.
    """
    key = given or (path.read_text().strip() if path.exists() else "") or new_admin_key()
    if not path.exists() or path.read_text().strip() != key:
        write_private(path, f"{key}\n")
    path.chmod(0o600)
    return key


def load_or_create_s3_credentials(path: Path) -> S3Credentials:
    """SeaweedFS's S3 key pair from `path` (JSON), generated and written there if absent."""
    if path.exists():
        stored = json.loads(path.read_text())
        return S3Credentials(stored["accessKey"], stored["secretKey"])
    credentials = S3Credentials(f"farm-{secrets.token_hex(8)}", secrets.token_urlsafe(32))
    write_private(
        path,
        json.dumps({"accessKey": credentials.access_key, "secretKey": credentials.secret_key}),
    )
    return credentials
