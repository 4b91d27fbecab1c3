"""Tenants' saved browser profiles: metadata in SQL, state (Playwright's JSON) in S3.

A profile is saved whole each time, under a key of its own
(`<tenant>/_profiles/<name>/<sha256>.json`), so a reader never pairs a row with
another save's bytes; the state a row stops pointing at is removed.
"""

import hashlib
import json
import logging
from typing import Any

from farm_core.errors import FarmError, InvalidArgument, NotFound, ResourceExhausted
from farm_core.paging import Cursor
from farm_core.saved import check_saved_name
from farm_storage.blobs import BlobMissing, BlobStore
from farm_storage.saved_store import ProfileRecord, ProfileSummary, ProfileTable

log = logging.getLogger(__name__)

STATE_CONTENT_TYPE = "application/json"


def profile_object_key(tenant: str, name: str, sha256: str) -> str:
    """The S3 key of one saved state of a profile (task ids never start with "_")."""
    return f"{tenant}/_profiles/{name}/{sha256}.json"


def summarize_state(state: bytes) -> tuple[int, list[str]]:
    """A storage state's number of cookies and local storage origins; InvalidArgument if not one."""
    try:
        parsed: Any = json.loads(state)
    except ValueError as error:
        raise InvalidArgument("state", f"is not JSON: {error}") from error
    if not isinstance(parsed, dict):
        raise InvalidArgument("state", "must be a JSON object with cookies and origins")
    cookies = parsed.get("cookies", [])
    origins = parsed.get("origins", [])
    if not isinstance(cookies, list) or not isinstance(origins, list):
        raise InvalidArgument("state", "cookies and origins must be lists")
    names = [str(origin.get("origin", "")) for origin in origins if isinstance(origin, dict)]
    return len(cookies), sorted(name for name in names if name)


class ProfileLibrary:
    """Reads, saves and deletes profiles, each within a size limit."""

    def __init__(self, table: ProfileTable, blobs: BlobStore, max_bytes: int) -> None:
        self._table = table
        self._blobs = blobs
        self._max_bytes = max_bytes

    async def state(self, tenant: str, name: str) -> tuple[ProfileRecord, bytes]:
        """The tenant's profile and its state; NotFound when it has none of that name."""
        check_saved_name("name", name)
        for _ in range(2):
            record = await self._table.get(tenant, name)
            try:
                return record, await self._blobs.get(record.object_key)
            except BlobMissing:
                # Saved again or deleted while we read: the row is read again once.
                continue
        raise NotFound("profile", name)

    async def save(self, tenant: str, name: str, state: bytes) -> ProfileRecord:
        """Saves `state` as the tenant's profile `name`, replacing the one saved before."""
        check_saved_name("name", name)
        if len(state) > self._max_bytes:
            raise ResourceExhausted(
                f"profile {name!r} is {len(state)} bytes; a profile may hold at most "
                f"{self._max_bytes}"
            )
        cookies, origins = summarize_state(state)
        sha256 = hashlib.sha256(state).hexdigest()
        key = profile_object_key(tenant, name, sha256)
        await self._blobs.put(key, state, STATE_CONTENT_TYPE)
        summary = ProfileSummary(len(state), sha256, cookies, origins, key)
        try:
            record, before = await self._table.save(tenant, name, summary)
        except BaseException:
            await self._discard_unless_current(tenant, name, key)
            raise
        if before and before != key:
            await self._discard(before)
        return record

    async def page(self, tenant: str, size: int, after: Cursor | None) -> list[ProfileRecord]:
        """Up to `size` of the tenant's profiles, most recently saved first."""
        return await self._table.page(tenant, size, after)

    async def delete(self, tenant: str, name: str) -> None:
        """Deletes the tenant's profile: the row goes only once its state is gone."""
        check_saved_name("name", name)
        async with self._table.deleting(tenant, name) as record:
            await self._blobs.remove(record.object_key)

    async def _discard_unless_current(self, tenant: str, name: str, key: str) -> None:
        """Removes `key` unless the profile's row points at it (the same state saved before)."""
        try:
            current = await self._table.get(tenant, name)
        except NotFound:
            current = None
        if current is None or current.object_key != key:
            await self._discard(key)

    async def _discard(self, key: str) -> None:
        try:
            await self._blobs.remove(key)
        except FarmError as error:
            log.warning("could not remove the unreferenced S3 object %r: %s", key, error)
