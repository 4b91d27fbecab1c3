"""The agent's settings: the network allow-list and the priority weights from the environment."""

import ipaddress

import pytest
from pydantic import ValidationError

from farm_agent.settings import AgentSettings
from farm_core.egress.allowlist import AllowList


def test_allow_list_takes_cidrs_addresses_and_host_names() -> None:
    allow = AllowList.parse(
        " 127.0.0.0/8, 10.1.2.3/8 ,::1, 192.168.1.5, Intranet.Example., localhost,"
    )
    assert [str(net) for net in allow.networks] == [
        "127.0.0.0/8",
        "10.0.0.0/8",
        "::1/128",
        "192.168.1.5/32",
    ]
    assert allow.hosts == {"intranet.example", "localhost"}


def test_allow_list_answers_for_addresses_and_hosts() -> None:
    allow = AllowList.parse("127.0.0.0/8,intranet.example")
    assert allow.allows_address(ipaddress.ip_address("127.0.0.9"))
    assert not allow.allows_address(ipaddress.ip_address("10.0.0.1"))
    assert not allow.allows_address(ipaddress.ip_address("::1"))
    assert allow.allows_host("INTRANET.example.")
    assert not allow.allows_host("example.com")


def test_empty_allow_list_allows_nothing() -> None:
    allow = AllowList.parse("")
    assert allow == AllowList()
    assert str(allow) == "(nothing)"
    assert not allow.allows_address(ipaddress.ip_address("127.0.0.1"))


def test_allow_list_names_every_bad_entry() -> None:
    with pytest.raises(ValueError) as caught:
        AllowList.parse("127.0.0.0/8,10.0.0.0/33,bad host,-dash.example,1.2.3,ok.example")
    message = str(caught.value)
    for bad in ("'10.0.0.0/33'", "'bad host'", "'-dash.example'", "'1.2.3'"):
        assert bad in message
    assert "127.0.0.0/8" not in message
    assert "ok.example" not in message


def test_settings_parse_the_allow_list_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FARM_AGENT_ALLOW", "127.0.0.0/8,localhost")
    settings = AgentSettings()
    assert str(settings.allow) == "127.0.0.0/8,localhost"


def test_settings_refuse_a_bad_allow_list_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FARM_AGENT_ALLOW", "127.0.0.0/8,no such host")
    with pytest.raises(ValidationError, match=r"FARM_AGENT_ALLOW: 'no such host'"):
        AgentSettings()


def test_settings_defaults_suit_one_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FARM_AGENT_ALLOW", raising=False)
    settings = AgentSettings(FARM_HOME="/srv/farm")
    assert (settings.port, settings.metrics_port, settings.concurrency) == (7110, 7210, 2)
    assert settings.priority_weights == (6, 3, 1)
    assert settings.max_result_text_bytes == 1024 * 1024
    assert settings.upload_chunk_bytes == 256 * 1024
    assert settings.id.endswith(f"-{__import__('os').getpid()}")
    assert str(settings.scratch_dir()) == f"/srv/farm/agents/{settings.id}/tmp"


def test_priority_weights_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_AGENT_PRIORITY_WEIGHTS", " 5, 2 ,1")
    assert AgentSettings().priority_weights == (5, 2, 1)


@pytest.mark.parametrize("weights", ["6,3", "a,b,c", "0,0,0", "6;3;1"])
def test_bad_priority_weights_are_refused(monkeypatch: pytest.MonkeyPatch, weights: str) -> None:
    monkeypatch.setenv("FARM_AGENT_PRIORITY_WEIGHTS", weights)
    with pytest.raises(ValidationError, match="FARM_AGENT_PRIORITY_WEIGHTS"):
        AgentSettings()


def test_max_browsers_below_min_is_refused() -> None:
    with pytest.raises(ValidationError, match="FARM_AGENT_MAX_BROWSERS"):
        AgentSettings(min_browsers=3, max_browsers=2)


def test_the_farm_services_pages_may_not_reach_come_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:7422,tls://user:pw@nats.internal")
    monkeypatch.setenv("FARM_AGENT_STORAGE_ADDRESS", "storage.internal:7102")
    monkeypatch.setenv("FARM_AGENT_FARM_ADDRESSES", "127.0.0.1:7100, [::1]:7101")
    services = AgentSettings(FARM_HOME="/srv/farm").farm_services()
    assert {(service.host, service.port) for service in services} == {
        ("127.0.0.1", 7110),
        ("127.0.0.1", 7210),
        ("storage.internal", 7102),
        ("127.0.0.1", 7422),
        ("nats.internal", 4222),
        ("127.0.0.1", 7100),
        ("::1", 7101),
    }


def test_a_farm_address_without_a_port_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FARM_AGENT_FARM_ADDRESSES", "envoy.internal")
    with pytest.raises(ValidationError, match=r"FARM_AGENT_FARM_ADDRESSES: 'envoy\.internal'"):
        AgentSettings()


def test_storage_replicas_are_all_kept_from_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_AGENT_STORAGE_ADDRESS", "10.0.0.5:7102,10.0.0.6:7102")
    services = AgentSettings(FARM_HOME="/srv/farm").farm_services()
    assert {("10.0.0.5", 7102), ("10.0.0.6", 7102)} <= {(s.host, s.port) for s in services}


@pytest.mark.parametrize("addresses", ["storage-a:7102,storage-b:7102", "10.0.0.5:7102,[::1]:7102"])
def test_storage_replicas_by_name_or_of_mixed_families_are_refused(
    monkeypatch: pytest.MonkeyPatch, addresses: str
) -> None:
    monkeypatch.setenv("FARM_AGENT_STORAGE_ADDRESS", addresses)
    with pytest.raises(ValidationError, match="FARM_AGENT_STORAGE_ADDRESS"):
        AgentSettings(FARM_HOME="/srv/farm")
