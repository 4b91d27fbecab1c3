"""Which API key opened a session's socket: the key itself, or the asker of a live view's token."""

from farm_core.key_revocations import live_identity_key, opening_key


def test_a_keys_socket_is_opened_by_that_key() -> None:
    assert opening_key("key_00000000000000aa") == "key_00000000000000aa"


def test_a_live_views_socket_is_opened_by_the_key_that_asked_for_its_token() -> None:
    identity_key = live_identity_key("tok_0123456789abcdef", "key_00000000000000aa")
    assert identity_key.startswith("live:tok_01234567")
    assert opening_key(identity_key) == "key_00000000000000aa"


def test_a_live_token_that_names_no_key_was_opened_by_none() -> None:
    # A token from a scheduler older than the key's name in it: no revoke ends its view.
    assert opening_key(live_identity_key("tok_0123456789abcdef", "")) == ""
    assert opening_key("live:tok_01234567") == ""
