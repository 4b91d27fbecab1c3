"""The key-hash pepper is auth's own secret; one hashed with an old identity secret is kept."""

from pathlib import Path

from farm_auth.settings import AuthSettings

IDENTITY_SECRET = "i" * 40


def test_a_new_farm_gets_a_random_pepper_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "identity-secret").write_text(
        IDENTITY_SECRET
    )  # as the launcher made it before identity keys
    settings = AuthSettings(FARM_HOME=tmp_path)
    pepper = settings.resolved_key_pepper()
    assert len(pepper) >= 32
    assert pepper != IDENTITY_SECRET
    assert settings.resolved_key_pepper() == pepper  # kept in FARM_HOME/key-pepper
    assert (tmp_path / "key-pepper").stat().st_mode & 0o777 == 0o600


def test_a_farm_whose_keys_were_hashed_with_its_identity_secret_keeps_it_as_the_pepper(
    tmp_path: Path,
) -> None:
    (tmp_path / "identity-secret").write_text("s" * 48)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "auth.db").write_bytes(b"")  # its keys were made before
    settings = AuthSettings(FARM_HOME=tmp_path)
    assert settings.resolved_key_pepper() == "s" * 48
    (tmp_path / "identity-secret").write_text("t" * 48)  # a new identity secret later
    assert settings.resolved_key_pepper() == "s" * 48


def test_the_environment_names_the_pepper(tmp_path: Path) -> None:
    settings = AuthSettings(FARM_HOME=tmp_path, key_pepper="p" * 40)
    assert settings.resolved_key_pepper() == "p" * 40
    assert not (tmp_path / "key-pepper").exists()
