"""What `farm up` tells the user about reaching the farm with the `farm` command."""

from pathlib import Path

from farm_cli.commands.up import cli_lines, nats_login_lines


def test_the_banner_sends_the_cli_to_farm_home_not_to_a_farm_url() -> None:
    home = Path("/srv/second/.farm")
    assert cli_lines(home) == [
        f"  status: farm status (in this checkout, or anywhere with FARM_HOME={home})"
    ]


def test_the_infrastructure_banner_names_the_nats_login_a_service_needs(tmp_path: Path) -> None:
    passwords = tmp_path / "nats" / "users.json"
    passwords.parent.mkdir()
    passwords.write_text('{"scheduler": "s", "auth": "a", "storage": "t", "agent-1": "g"}')

    lines = nats_login_lines(True, tmp_path)

    assert "users scheduler, auth, storage, agent-1" in lines[0]
    assert "NATS_USER" in lines[0]
    assert f"NATS_PASSWORD from {passwords}" in lines[1]
    assert nats_login_lines(False, tmp_path) == []  # NATS_URL given: its logins are not ours
