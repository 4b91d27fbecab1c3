"""Tenants' artifact byte quotas, as the upload's grant carries them from the scheduler."""

from farm_core.errors import ResourceExhausted


def check_byte_quota(
    tenant: str, stored_bytes: int, upload_bytes: int, limit: int, in_flight_bytes: int = 0
) -> None:
    """Raises ResourceExhausted if `upload_bytes` more would put `tenant` over `limit` (0: none).

    `in_flight_bytes` are held by the tenant's other uploads under way.
    """
    if limit and stored_bytes + in_flight_bytes + upload_bytes > limit:
        under_way = f" and {in_flight_bytes} in uploads under way" if in_flight_bytes else ""
        raise ResourceExhausted(
            f"quota maxArtifactBytes: tenant {tenant!r} stores {stored_bytes} bytes of "
            f"artifacts{under_way}; {upload_bytes} more would pass its quota of {limit}"
        )
