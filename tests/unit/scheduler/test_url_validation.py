"""URL checks whose refusals quote what was sent: the scheme, empty host labels, numeric hosts."""

import pytest

from farm.sessions.v1 import sessions_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.sessions.validation import validate_command
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import validate


@pytest.mark.parametrize("url", ["example.com", "localhost:8080/page", "www.example.com/a?b=c"])
def test_url_without_scheme_is_refused_quoting_what_was_sent(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(url=url))
    assert caught.value.message == f"url: must start with http:// or https://, got {url!r}"


def test_url_of_another_scheme_is_refused_naming_the_scheme() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(url="ftp://example.com/file"))
    assert caught.value.message == "url: must be http or https, got 'ftp'"


@pytest.mark.parametrize(
    ("url", "host"),
    [("http://a..b/", "a..b"), ("http://.example/", ".example"), ("https://x.y../", "x.y..")],
)
def test_url_whose_host_has_an_empty_label_is_refused_naming_the_host(url: str, host: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(url=url))
    assert caught.value.message == f"url: host {host!r} has an empty label"


ODD_IPV4_HOSTS = ["127.1", "0", "0177.0.0.1", "017700000001", "127.0.0.1.", "2130706433", "0x7f.1"]


@pytest.mark.parametrize("host", ODD_IPV4_HOSTS)
@pytest.mark.parametrize(("field", "name"), [("callback_url", "callbackUrl"), ("url", "url")])
def test_a_numeric_host_not_written_as_a_dotted_quad_is_refused(
    host: str, field: str, name: str
) -> None:
    # A browser reads these as 127.0.0.1 (or 0.0.0.0); aiohttp refuses them, so a
    # callback to one was accepted and then retried until its attempts ran out.
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(**{field: f"http://{host}/hook"}))
    assert caught.value.field == name
    assert caught.value.message.startswith(f"{name}: host {host!r} ends in a number")
    assert "four decimal numbers 0-255" in caught.value.message


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "http://[::1]/", "http://1e100.net/", "http://example.com./"]
)
def test_dotted_quads_bracketed_ipv6_and_names_with_digits_pass(url: str) -> None:
    assert validate(task_spec(url=url)).url == url


def test_a_steps_goto_and_a_session_commands_url_are_checked_for_empty_labels_too() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(steps=[{"goto": "http://a..b/"}]))
    assert caught.value.message == "steps[0].goto: host 'a..b' has an empty label"
    with pytest.raises(InvalidArgument) as caught:
        validate_command(sessions_pb2.SessionCommand(url="http://.example/"), 30_000)
    assert caught.value.message == "url: host '.example' has an empty label"
