"""A tenant's byte quota: an upload that reaches it exactly passes, one byte more is refused."""

import pytest

from farm_core.errors import ResourceExhausted
from farm_storage.quotas import check_byte_quota


def test_an_upload_that_reaches_the_quota_exactly_passes() -> None:
    check_byte_quota("acme", stored_bytes=600, upload_bytes=400, limit=1000)


def test_an_upload_one_byte_over_the_quota_is_refused_naming_it() -> None:
    with pytest.raises(ResourceExhausted, match=r"^quota maxArtifactBytes: tenant 'acme'"):
        check_byte_quota("acme", stored_bytes=600, upload_bytes=401, limit=1000)


def test_a_zero_quota_is_unlimited() -> None:
    check_byte_quota("acme", stored_bytes=10**12, upload_bytes=10**9, limit=0)
