"""The one table of RPC rules covers every RPC the farm serves, and says the right things."""

import pytest
from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import Descriptor, MethodDescriptor

from farm_auth.server import AuthService
from farm_core.scopes import (
    ANY_IDENTITY,
    MUTATING_METHODS,
    NO_IDENTITY,
    PUBLIC_SCOPES,
    RPC_RULES,
    Scope,
)
from farm_scheduler.server import SchedulerService
from farm_storage.server import StorageService
from tests.unit.rpcs import ALL_METHODS, full_name

# Served to the farm's own agents (scope agent) and MCP service (scope mcp), not routed by Envoy.
AGENT_SERVICES = {"farm.storage.v1.ArtifactIngestService"}
MCP_SERVICES = {"farm.auth.v1.IdentityRenewalService"}
INTERNAL_SERVICES = AGENT_SERVICES | MCP_SERVICES


PUBLIC_METHODS = [m for m in ALL_METHODS if m.containing_service.full_name not in INTERNAL_SERVICES]


def test_the_walk_finds_every_service() -> None:
    services = {m.containing_service.full_name for m in ALL_METHODS}
    assert {
        "farm.tasks.v1.TaskService",
        "farm.admin.v1.AdminService",
        "farm.auth.v1.AuthService",
        "farm.audit.v1.AuditService",
        "farm.storage.v1.ArtifactService",
        "farm.storage.v1.ArtifactIngestService",
    } <= services


@pytest.mark.parametrize("method", ALL_METHODS, ids=full_name)
def test_every_rpc_has_a_scope_rule(method: MethodDescriptor) -> None:
    rule = RPC_RULES.get(full_name(method))
    assert rule is not None, f"{full_name(method)} has no entry in farm_core.scopes.RPC_RULES"
    assert rule.scope in PUBLIC_SCOPES | {ANY_IDENTITY, Scope.INTERNAL, Scope.AGENT, Scope.MCP}


def test_every_rule_names_a_served_rpc() -> None:
    served = {full_name(m) for m in ALL_METHODS}
    assert set(RPC_RULES) - served == set()
    # The edge's check is served over HTTP: no RPC is callable without an identity.
    assert [name for name, rule in RPC_RULES.items() if rule.scope == NO_IDENTITY] == []


def test_only_the_internal_services_need_an_agents_or_mcp_scope_and_no_rpc_the_internal_one() -> (
    None
):
    agents = {m for m, rule in RPC_RULES.items() if rule.scope == Scope.AGENT}
    assert {m.split("/")[1] for m in agents} == AGENT_SERVICES
    mcp = {m for m, rule in RPC_RULES.items() if rule.scope == Scope.MCP}
    assert {m.split("/")[1] for m in mcp} == MCP_SERVICES
    # The internal scope (a service's credential) opens only what any identity may call.
    assert not [m for m, rule in RPC_RULES.items() if rule.scope == Scope.INTERNAL]


@pytest.mark.parametrize("service", ["farm.admin.v1.AdminService", "farm.audit.v1.AuditService"])
def test_admin_services_need_the_admin_scope(service: str) -> None:
    methods = [m for m in ALL_METHODS if m.containing_service.full_name == service]
    assert methods
    assert {RPC_RULES[full_name(m)].scope for m in methods} == {Scope.ADMIN}


def test_managing_keys_and_tenant_limits_needs_the_admin_scope() -> None:
    for name in ("CreateApiKey", "ListApiKeys", "RevokeApiKey", "UpdateApiKey", "RotateApiKey"):
        assert RPC_RULES[f"/farm.auth.v1.AuthService/{name}"].scope == Scope.ADMIN
    assert RPC_RULES["/farm.auth.v1.AuthService/UpdateTenantLimits"].scope == Scope.ADMIN


@pytest.mark.parametrize("method", PUBLIC_METHODS, ids=full_name)
def test_an_rpc_is_audited_as_mutating_exactly_when_its_http_verb_changes_things(
    method: MethodDescriptor,
) -> None:
    http = method.GetOptions().Extensions[annotations_pb2.http]
    verb = http.WhichOneof("pattern")
    assert verb is not None, f"{full_name(method)} has no HTTP binding"
    assert (full_name(method) in MUTATING_METHODS) == (verb != "get")


@pytest.mark.parametrize("method", ALL_METHODS, ids=full_name)
def test_audit_targets_name_fields_of_the_messages(method: MethodDescriptor) -> None:
    rule = RPC_RULES[full_name(method)]
    for path, request_or_response in (
        (rule.target, method.input_type),
        (rule.created, method.output_type),
    ):
        message: Descriptor | None = request_or_response
        for name in filter(None, path.split(".")):
            assert message is not None, f"{full_name(method)}: {path} goes through a scalar field"
            field = message.fields_by_name.get(name)
            assert field is not None, f"{full_name(method)}: {path} is not a field"
            message = field.message_type


def test_only_fleet_limit_and_credential_changes_are_for_operators_with_the_admin_scope() -> None:
    operator_only = {m for m, rule in RPC_RULES.items() if rule.operator_only}
    assert operator_only == {
        "/farm.auth.v1.AuthService/RevokeCredential",
        "/farm.admin.v1.AdminService/ListAgents",
        "/farm.admin.v1.AdminService/DrainAgent",
        "/farm.admin.v1.AdminService/GetFleetStatus",
        "/farm.auth.v1.AuthService/UpdateApiKey",
        "/farm.auth.v1.AuthService/UpdateTenantLimits",
    }
    assert {RPC_RULES[m].scope for m in operator_only} == {Scope.ADMIN}


@pytest.mark.parametrize(
    ("service", "names"),
    [
        (AuthService, ["farm.auth.v1.AuthService", "farm.audit.v1.AuditService"]),
        (SchedulerService, ["farm.tasks.v1.TaskService", "farm.admin.v1.AdminService"]),
        (
            StorageService,
            ["farm.storage.v1.ArtifactService", "farm.storage.v1.ArtifactIngestService"],
        ),
    ],
)
def test_each_service_enforces_the_rules_of_what_it_serves(service: type, names: list[str]) -> None:
    served = {full_name(m) for m in ALL_METHODS if m.containing_service.full_name in names}
    scopes = service.method_scopes  # type: ignore[attr-defined]
    assert served <= set(scopes)
    assert all(scopes[m] == RPC_RULES[m].scope for m in served)
