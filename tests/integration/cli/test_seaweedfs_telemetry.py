"""The embedded SeaweedFS keeps to itself: weed's anonymous statistics to seaweedfs.com are off."""

import pytest

from tests.conftest import S3Server

pytestmark = pytest.mark.integration

# What weed's master logs at start when it will report cluster statistics.
REPORTING = "Reporting anonymous cluster statistics"


def test_the_embedded_seaweedfs_reports_no_statistics(seaweedfs: S3Server) -> None:
    log = seaweedfs.process.log_path.read_text(errors="replace")
    # The master's start is in the log, so its telemetry line would be too.
    assert "becomes leader" in log
    assert REPORTING not in log
