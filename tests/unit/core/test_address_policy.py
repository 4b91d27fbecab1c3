"""The egress address policy: each denied range, the allow-list, mapped IPv6, farm services."""

import ipaddress

import pytest

from farm_core.egress.address_policy import (
    AddressPolicy,
    FarmService,
    Reason,
    Refusal,
    farm_addresses_of,
)
from farm_core.egress.allowlist import AllowList


def check(
    policy: AddressPolicy, *addresses: str, host: str = "example.test", port: int = 80
) -> Refusal | None:
    return policy.check(host, port, [ipaddress.ip_address(address) for address in addresses])


DEFAULT = AddressPolicy()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", Reason.LOOPBACK),
        ("127.255.0.9", Reason.LOOPBACK),
        ("::1", Reason.LOOPBACK),
        ("10.0.0.1", Reason.PRIVATE),
        ("172.16.0.1", Reason.PRIVATE),
        ("172.31.255.254", Reason.PRIVATE),
        ("192.168.1.1", Reason.PRIVATE),
        ("100.64.0.1", Reason.PRIVATE),
        ("fd12:3456::1", Reason.PRIVATE),
        ("169.254.1.1", Reason.LINK_LOCAL),
        ("fe80::1", Reason.LINK_LOCAL),
        ("169.254.169.254", Reason.METADATA),
        ("fd00:ec2::254", Reason.METADATA),
        ("224.0.0.1", Reason.MULTICAST),
        ("ff02::1", Reason.MULTICAST),
        ("0.0.0.0", Reason.UNSPECIFIED),
        ("::", Reason.UNSPECIFIED),
        ("255.255.255.255", Reason.RESERVED),
        ("192.0.2.7", Reason.RESERVED),
        ("::ffff:127.0.0.1", Reason.LOOPBACK),
        ("::ffff:169.254.169.254", Reason.METADATA),
        ("::ffff:10.1.2.3", Reason.PRIVATE),
        ("2002:7f00:1::", Reason.LOOPBACK),
        ("64:ff9b::a9fe:a9fe", Reason.METADATA),
    ],
)
def test_each_denied_range_is_refused_with_its_reason(address: str, reason: Reason) -> None:
    refusal = check(DEFAULT, address)
    assert refusal is not None
    assert refusal.reason is reason
    assert refusal.address == address


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"]
)
def test_public_addresses_pass(address: str) -> None:
    assert check(DEFAULT, address) is None


def test_one_denied_address_among_public_ones_refuses_the_host() -> None:
    refusal = check(DEFAULT, "8.8.8.8", "10.0.0.1")
    assert refusal is not None and refusal.reason is Reason.PRIVATE


def test_a_cidr_in_the_allow_list_opens_its_addresses_only() -> None:
    policy = AddressPolicy(AllowList.parse("127.0.0.2/32,10.0.0.0/8"))
    assert check(policy, "127.0.0.2") is None
    assert check(policy, "10.9.8.7") is None
    assert check(policy, "::ffff:10.9.8.7") is None
    refused = check(policy, "127.0.0.1")
    assert refused is not None and refused.reason is Reason.LOOPBACK
    metadata = check(policy, "169.254.169.254")
    assert metadata is not None and metadata.reason is Reason.METADATA


def test_a_host_name_in_the_allow_list_opens_that_name_whatever_it_resolves_to() -> None:
    policy = AddressPolicy(AllowList.parse("intranet.example"))
    assert check(policy, "10.0.0.5", host="intranet.example") is None
    assert check(policy, "10.0.0.5", host="INTRANET.example.") is None
    other = check(policy, "10.0.0.5", host="other.example")
    assert other is not None and other.reason is Reason.PRIVATE


def test_farm_services_are_refused_even_where_the_allow_list_opens_their_network() -> None:
    storage = FarmService.parse("127.0.0.1:7102")
    nats = FarmService.parse("nats://nats.internal", default_port=4222)
    addresses, everywhere = farm_addresses_of(
        [storage, nats], {storage: [ipaddress.ip_address("127.0.0.1")]}
    )
    policy = AddressPolicy(
        AllowList.parse("127.0.0.0/8"), frozenset([storage, nats]), addresses, everywhere
    )
    assert check(policy, "127.0.0.1", port=8080) is None
    refusal = check(policy, "127.0.0.1", host="127.0.0.1", port=7102)
    assert refusal is not None and refusal.reason is Reason.FARM_SERVICE
    assert refusal.describe() == (
        "127.0.0.1:7102 is one of the farm's own services; FARM_AGENT_ALLOW cannot open it"
    )
    mapped = check(policy, "::ffff:127.0.0.1", port=7102)
    assert mapped is not None and mapped.reason is Reason.FARM_SERVICE
    by_name = check(policy, "203.0.113.9", host="nats.internal", port=4222)
    assert by_name is not None and by_name.reason is Reason.FARM_SERVICE


def test_a_service_bound_to_every_address_is_refused_on_its_port_anywhere() -> None:
    agent = FarmService("0.0.0.0", 7110)
    addresses, everywhere = farm_addresses_of([agent], {agent: [ipaddress.ip_address("0.0.0.0")]})
    policy = AddressPolicy(AllowList.parse("10.0.0.0/8"), frozenset([agent]), addresses, everywhere)
    refusal = check(policy, "10.1.1.1", port=7110)
    assert refusal is not None and refusal.reason is Reason.FARM_SERVICE


def test_refusals_name_the_host_the_address_and_the_way_to_open_it() -> None:
    by_name = check(DEFAULT, "127.0.0.1", host="localhost")
    assert by_name is not None
    assert by_name.describe() == (
        "localhost resolves to 127.0.0.1, a loopback address; FARM_AGENT_ALLOW can open it"
    )
    literal = check(DEFAULT, "169.254.169.254", host="169.254.169.254")
    assert literal is not None
    assert literal.describe() == (
        "169.254.169.254 is a cloud metadata address; FARM_AGENT_ALLOW can open it"
    )


@pytest.mark.parametrize("scheme", ["http", "https", "ws", "wss", "HTTPS"])
def test_web_schemes_pass(scheme: str) -> None:
    assert DEFAULT.check_scheme("example.test", scheme) is None


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", ""])
def test_other_schemes_are_refused(scheme: str) -> None:
    refusal = DEFAULT.check_scheme("example.test", scheme)
    assert refusal is not None and refusal.reason is Reason.SCHEME


@pytest.mark.parametrize(
    ("text", "service"),
    [
        ("127.0.0.1:7102", FarmService("127.0.0.1", 7102)),
        ("[::1]:7102", FarmService("::1", 7102)),
        ("nats://user:pw@Nats.Example:4223", FarmService("nats.example", 4223)),
    ],
)
def test_farm_service_addresses_parse(text: str, service: FarmService) -> None:
    assert FarmService.parse(text) == service


def test_a_farm_service_without_a_port_is_an_error() -> None:
    with pytest.raises(ValueError, match="not host:port"):
        FarmService.parse("storage.internal")
