"""Signing callbacks and checking their signatures (farm_core.webhook_signature)."""

import hashlib
import hmac

from farm_core.webhook_signature import (
    event_signature_header,
    signature,
    signature_header,
    verify,
    verify_event,
)

SECRET = "whsec_test"
BODY = b'{"id":"abc","status":"TASK_STATUS_SUCCEEDED"}'
NOW = 1_800_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == expected
    assert signature_header([SECRET], NOW, BODY) == f"v1={expected}"


def test_a_signed_body_verifies() -> None:
    header = signature_header([SECRET], NOW, BODY)
    assert verify(SECRET, header, str(NOW), BODY, now=NOW + 10)


def test_a_changed_body_wrong_secret_or_changed_timestamp_is_detected() -> None:
    header = signature_header([SECRET], NOW, BODY)
    assert not verify(SECRET, header, str(NOW), BODY.replace(b"abc", b"abd"), now=NOW)
    assert not verify("whsec_other", header, str(NOW), BODY, now=NOW)
    assert not verify(SECRET, header, str(NOW + 1), BODY, now=NOW)
    assert not verify(SECRET, "v1=" + "0" * 64, str(NOW), BODY, now=NOW)
    assert not verify(SECRET, "", str(NOW), BODY, now=NOW)
    assert not verify(SECRET, header, "not a number", BODY, now=NOW)


def test_a_signature_outside_the_replay_window_is_refused() -> None:
    header = signature_header([SECRET], NOW, BODY)
    assert verify(SECRET, header, str(NOW), BODY, now=NOW + 300)
    assert not verify(SECRET, header, str(NOW), BODY, now=NOW + 301)
    assert not verify(SECRET, header, str(NOW), BODY, now=NOW - 301)
    assert verify(SECRET, header, str(NOW), BODY, now=NOW + 1000, tolerance_seconds=3600)


def test_after_a_rotation_either_secret_verifies() -> None:
    header = signature_header(["whsec_new", "whsec_old"], NOW, BODY)
    assert header.count("v1=") == 2
    assert verify("whsec_new", header, str(NOW), BODY, now=NOW)
    assert verify("whsec_old", header, str(NOW), BODY, now=NOW)
    assert not verify("whsec_other", header, str(NOW), BODY, now=NOW)


def test_the_event_signature_is_hmac_sha256_of_event_id_timestamp_and_body() -> None:
    signed = f"abc.1.{NOW}.".encode() + BODY
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    header = event_signature_header([SECRET, "whsec_old"], "abc.1", NOW, BODY)
    assert header.split(",")[0] == f"v1={expected}"
    assert verify_event(SECRET, header, "abc.1", str(NOW), BODY, now=NOW)
    assert verify_event("whsec_old", header, "abc.1", str(NOW), BODY, now=NOW)


def test_an_event_signature_detects_a_changed_event_id_body_timestamp_or_secret() -> None:
    header = event_signature_header([SECRET], "abc.1", NOW, BODY)
    assert not verify_event(SECRET, header, "abc.2", str(NOW), BODY, now=NOW)
    assert not verify_event(SECRET, header, "abc.1", str(NOW), BODY + b" ", now=NOW)
    assert not verify_event(SECRET, header, "abc.1", str(NOW + 1), BODY, now=NOW)
    assert not verify_event("whsec_other", header, "abc.1", str(NOW), BODY, now=NOW)
    assert not verify_event(SECRET, header, "abc.1", str(NOW), BODY, now=NOW + 301)
    # Neither signature stands in for the other.
    assert not verify(SECRET, header, str(NOW), BODY, now=NOW)
    assert not verify_event(
        SECRET, signature_header([SECRET], NOW, BODY), "", str(NOW), BODY, now=NOW
    )
