"""The bootstrap admin key: the one key FARM_ADMIN_KEY sets, made or re-keyed at start."""

import hmac
import logging

from sqlalchemy.exc import IntegrityError

from farm_auth.keys import BOOTSTRAP_KEY_NAME, KeyRecord, SecretHasher, new_key_id
from farm_auth.store import KeyStore
from farm_core.db import utcnow
from farm_core.scopes import PUBLIC_SCOPES

log = logging.getLogger(__name__)

BOOTSTRAP_SCOPES: tuple[str, ...] = tuple(sorted(PUBLIC_SCOPES))


async def ensure_bootstrap_key(
    store: KeyStore, tenant: str, admin_secret: str, hasher: SecretHasher
) -> KeyRecord:
    """Makes `admin_secret` the bootstrap admin key of `tenant`, with every public scope.

    Idempotent: a restart with the same secret changes nothing; another secret
    replaces the old one (the key keeps its id). A revoked bootstrap key stays
    revoked until FARM_ADMIN_KEY names a new secret.
    """
    try:
        return await _ensure(store, tenant, hasher.hash(admin_secret))
    except IntegrityError:
        # Another replica starting at the same moment made the key first.
        return await _ensure(store, tenant, hasher.hash(admin_secret))


async def _ensure(store: KeyStore, tenant: str, secret_hash: str) -> KeyRecord:
    existing = await store.find_named(tenant, BOOTSTRAP_KEY_NAME)
    if existing is None:
        record = KeyRecord(
            id=new_key_id(),
            tenant=tenant,
            name=BOOTSTRAP_KEY_NAME,
            scopes=BOOTSTRAP_SCOPES,
            secret_hash=secret_hash,
            create_time=utcnow(),
        )
        await store.create(record)
        log.info("created the bootstrap admin key %s of tenant %r", record.id, tenant)
        return record
    if not hmac.compare_digest(existing.secret_hash, secret_hash):
        log.info("bootstrap admin key %s now answers to the configured secret", existing.id)
        return await store.rekey(existing.id, secret_hash, BOOTSTRAP_SCOPES)
    if existing.revoke_time is not None:
        log.warning(
            "the bootstrap admin key %s is revoked; set FARM_ADMIN_KEY to a new secret "
            "to replace it",
            existing.id,
        )
    if existing.scopes != BOOTSTRAP_SCOPES:
        return await store.set_scopes(existing.id, BOOTSTRAP_SCOPES)
    return existing
