"""One-time form tokens: a nonce bound to the key and purpose, refused when altered or expired."""

from farm_console.once import FormTokens


def test_a_token_gives_its_nonce_each_time_it_is_checked() -> None:
    tokens = FormTokens("create-key")
    token = tokens.make("bf_key")
    nonce = tokens.nonce("bf_key", token)
    assert nonce is not None and token.startswith(f"{nonce}.")
    # Checking takes nothing: the farm refuses the second call made with the nonce.
    assert tokens.nonce("bf_key", token) == nonce
    assert tokens.nonce("bf_key", tokens.make("bf_key")) != nonce


def test_a_token_of_another_key_purpose_or_altered_is_invalid() -> None:
    tokens = FormTokens("create-key")
    token = tokens.make("bf_key")
    nonce, expires, mac = token.split(".")
    assert tokens.nonce("bf_other", token) is None
    assert FormTokens("other").nonce("bf_key", token) is None
    assert tokens.nonce("bf_key", f"{nonce}.{int(expires) + 60}.{mac}") is None
    assert tokens.nonce("bf_key", "") is None


def test_an_expired_token_is_invalid() -> None:
    tokens = FormTokens("create-key", lifetime=-1)
    assert tokens.nonce("bf_key", tokens.make("bf_key")) is None
