"""The artifact expiry request: owners round-trip, and nothing outside a task's keys is named."""

import json

import pytest

from farm_core.artifact_expiry import (
    ArtifactOwner,
    decode_answer,
    decode_expiry,
    encode_answer,
    encode_expiry,
    refused_owners,
)


def test_owners_and_answers_round_trip() -> None:
    owners = [ArtifactOwner("acme", "0123abcd"), ArtifactOwner("acme", "ses_00ff")]

    assert decode_expiry(encode_expiry(owners)) == owners
    assert decode_answer(encode_answer(3)) == 3


@pytest.mark.parametrize(
    "owner",
    [
        ["acme", "_baselines"],
        ["acme", "_profiles"],
        ["acme", "task/../other"],
        ["acme/x", "task"],
        ["", "task"],
        ["acme"],
        ["acme", 7],
    ],
)
def test_an_owner_that_could_name_other_keys_is_refused(owner: list[object]) -> None:
    with pytest.raises(ValueError):
        decode_expiry(json.dumps({"owners": [owner]}).encode())


def test_a_failed_answer_is_an_error_naming_why() -> None:
    with pytest.raises(ValueError, match="S3 is unavailable"):
        decode_answer(encode_answer(0, "S3 is unavailable"))


def test_a_failed_answer_refuses_the_owners_it_names_or_else_all() -> None:
    owners = [ArtifactOwner("acme", "a"), ArtifactOwner("acme", "b")]

    assert refused_owners(encode_answer(2), owners) == []
    assert refused_owners(encode_answer(1, "AccessDenied", owners[1:]), owners) == owners[1:]
    # An older storage names none; nor can an answer naming only strangers clear anyone.
    assert refused_owners(encode_answer(0, "S3 is unavailable"), owners) == owners
    stranger = [ArtifactOwner("acme", "c")]
    assert refused_owners(encode_answer(0, "AccessDenied", stranger), owners) == owners
    with pytest.raises(ValueError):
        refused_owners(b'{"error": "no count"}', owners)
