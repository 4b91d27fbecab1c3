"""Channel targets: one service address as given, replicas as a round-robin IP list."""

import pytest

from farm_core.transport import channel_target


def test_one_address_is_the_target_as_given() -> None:
    assert channel_target("storage.internal:7102") == ("storage.internal:7102", ())


def test_ipv4_replicas_are_called_round_robin() -> None:
    target, options = channel_target("10.0.0.5:7102, 10.0.0.6:7102")
    assert target == "ipv4:10.0.0.5:7102,10.0.0.6:7102"
    assert ("grpc.lb_policy_name", "round_robin") in options


def test_ipv6_replicas_keep_their_brackets() -> None:
    target, _ = channel_target("[::1]:7102,[::2]:7102")
    assert target == "ipv6:[::1]:7102,[::2]:7102"


@pytest.mark.parametrize(
    ("addresses", "named"),
    [("a.internal:1,b.internal:1", "'a.internal:1'"), ("10.0.0.5:1,[::1]:1", "mixes")],
)
def test_replicas_by_name_or_of_two_families_are_refused(addresses: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        channel_target(addresses)
