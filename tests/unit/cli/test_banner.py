"""What `farm up` tells the user about reaching the farm with the `farm` command."""

from pathlib import Path

from farm_cli.commands.up import cli_lines


def test_the_banner_sends_the_cli_to_farm_home_not_to_a_farm_url() -> None:
    home = Path("/srv/second/.farm")
    assert cli_lines(home) == [
        f"  status: farm status (in this checkout, or anywhere with FARM_HOME={home})"
    ]
