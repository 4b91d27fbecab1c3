"""What a client checks and builds when it is made: its CA file, its TLS context, TaskFailed."""

import asyncio
import dataclasses
import ssl
import typing
from pathlib import Path
from typing import Any
from unittest import mock

import grpc
import pytest

import browserfarm
from browserfarm.config import ClientOptions, ClientSettings, client_options
from browserfarm.http_transport import HttpTransport
from browserfarm.transport import TransportName
from farm.tasks.v1 import tasks_pb2
from farm_cli.launcher.tls import load_or_create_local_tls


@pytest.mark.parametrize("url", ["https://farm.example:8443", "http://127.0.0.1:1"])
@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_missing_ca_file_is_refused_naming_the_argument_and_path(
    url: str, transport: TransportName, tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match=r"^ca_file: no such file '.*missing\.pem'$"):
        browserfarm.Client(url=url, api_key="k", ca_file=missing, transport=transport)


def test_a_missing_farm_ca_file_is_refused_too(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    env = {"FARM_URL": "https://farm.example", "FARM_CA_FILE": missing}
    with pytest.raises(ValueError, match="ca_file: no such file"):
        browserfarm.AsyncClient(api_key="k", environ=env)


def test_an_http_farm_loads_no_ca_bundle() -> None:
    options = client_options("http://127.0.0.1:1", "k", {}, transport="http")
    with (
        mock.patch.object(ssl, "create_default_context") as default_context,
        mock.patch.object(ssl.SSLContext, "load_verify_locations") as verify_locations,
    ):
        transport = HttpTransport(options)
    default_context.assert_not_called()
    verify_locations.assert_not_called()
    asyncio.run(transport.close())


def test_an_https_farm_is_verified_with_its_ca(tmp_path: Path) -> None:
    ca = load_or_create_local_tls(tmp_path / "tls").ca
    assert ca is not None
    options = client_options("https://127.0.0.1:1", "k", {}, transport="http", ca_file=str(ca))
    made: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def recorded(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    with mock.patch.object(ssl, "create_default_context", recorded):
        transport = HttpTransport(options)
    asyncio.run(transport.close())
    [context] = made
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (tasks_pb2.TASK_STATUS_FAILED, grpc.StatusCode.FAILED_PRECONDITION),
        (tasks_pb2.TASK_STATUS_CANCELLED, grpc.StatusCode.CANCELLED),
    ],
)
def test_a_failed_task_has_a_meaningful_code(
    status: tasks_pb2.TaskStatus.ValueType, code: grpc.StatusCode
) -> None:
    proto = tasks_pb2.Task(id="tsk_1", status=status)
    proto.error.code = "HTTP_ERROR"
    failed = browserfarm.TaskFailed(browserfarm.Task.from_proto(proto))
    assert (failed.code, failed.error_code, failed.task.id) == (code, "HTTP_ERROR", "tsk_1")


@pytest.mark.parametrize(
    ("setting", "value", "refusal"),
    [
        ("timeout", 0, r"^timeout: seconds above 0, not 0$"),
        ("timeout", "30", r"^timeout: seconds above 0, not '30'$"),
        ("run_timeout", -1, r"^run_timeout: seconds above 0, not -1$"),
        ("max_attempts", 0, r"^max_attempts: a whole number of calls, at least 1, not 0$"),
        ("max_attempts", 2.5, r"^max_attempts: .*, not 2.5$"),
        ("backoff_seconds", float("nan"), r"^backoff_seconds: seconds, 0 or more, not nan$"),
        ("max_retry_after", True, r"^max_retry_after: .*, not True$"),
    ],
)
def test_a_setting_out_of_its_range_is_refused_naming_it_when_the_client_is_made(
    setting: str, value: object, refusal: str
) -> None:
    # As a program passes settings it read from a file, which its type checker cannot vouch for.
    settings: dict[str, Any] = {setting: value}
    with pytest.raises(ValueError, match=refusal):
        browserfarm.AsyncClient("http://127.0.0.1:1", "k", **settings)


def test_the_least_settings_allowed_are_taken() -> None:
    options = client_options(
        "http://127.0.0.1:1", "k", {}, max_attempts=1, backoff_seconds=0, max_retry_after=0
    )
    assert (options.max_attempts, options.backoff_seconds) == (1, 0)


def test_the_typed_settings_keywords_are_the_client_options_fields() -> None:
    # ClientSettings types the keywords a client passes on to ClientOptions: a field
    # added to one and not the other would be refused, or untyped, at a user's call.
    options = {field.name for field in dataclasses.fields(ClientOptions)} - {"url", "api_key"}
    settings = typing.get_type_hints(ClientSettings)
    extra = {"environ", "cwd"}

    assert set(settings) - extra == options
    hints = typing.get_type_hints(ClientOptions)
    assert {name: settings[name] for name in options} == {name: hints[name] for name in options}
