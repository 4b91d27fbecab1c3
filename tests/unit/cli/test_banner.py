"""What `farm up` tells the user about reaching the farm with the `farm` command."""

import pytest

from farm_cli.commands.up import cli_lines


def test_a_farm_on_the_default_address_needs_no_farm_url() -> None:
    assert cli_lines("http://127.0.0.1:8080") == ["  status: farm status"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:27080", "https://127.0.0.1:8080"])
def test_a_farm_elsewhere_names_the_farm_url_the_cli_needs(url: str) -> None:
    assert cli_lines(url) == [
        f"  status: export FARM_URL={url}, then farm status (else it tries 127.0.0.1:8080)"
    ]
