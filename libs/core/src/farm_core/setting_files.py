"""Checks of the files settings name (TLS certificates, keys, CAs), made once at start.

A missing or broken file would otherwise surface later as a traceback from ssl or
gRPC that names a path, not the setting; each problem here names the setting.
"""

import ssl
from pathlib import Path


def unreadable(setting: str, path: Path) -> str | None:
    """Why the file `setting` names cannot be read, or None if it can."""
    try:
        with path.open("rb"):
            return None
    except OSError as error:
        return f"{setting}={str(path)!r}: cannot read it: {error.strerror or error}"


def ca_file_problem(setting: str, path: Path) -> str | None:
    """Why `path` is no readable PEM CA certificate, or None if it is one."""
    problem = unreadable(setting, path)
    if problem is not None:
        return problem
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as error:
        return f"{setting}={str(path)!r}: not a PEM CA certificate ({error.reason or error})"
    return None


def cert_chain_problem(cert_setting: str, cert: Path, key_setting: str, key: Path) -> str | None:
    """Why `cert` and `key` are no PEM certificate chain and its private key, or None."""
    problem = unreadable(cert_setting, cert) or unreadable(key_setting, key)
    if problem is not None:
        return problem
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(str(cert), str(key))
    except ssl.SSLError as error:
        return (
            f"{cert_setting}={str(cert)!r} and {key_setting}={str(key)!r}: not a PEM "
            f"certificate chain and its private key ({error.reason or error})"
        )
    return None
