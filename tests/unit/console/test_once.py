"""One-time form tokens: taken once, bound to the key, refused when altered or expired."""

from farm_console.once import FormTokens, Submission


def test_a_token_is_taken_once_and_given_back_after_a_refusal() -> None:
    tokens = FormTokens("create-key")
    token = tokens.make("bf_key")
    assert tokens.take("bf_key", token) is Submission.FIRST
    assert tokens.take("bf_key", token) is Submission.REPEATED
    tokens.give_back(token)
    assert tokens.take("bf_key", token) is Submission.FIRST


def test_a_token_of_another_key_purpose_or_altered_is_invalid() -> None:
    tokens = FormTokens("create-key")
    token = tokens.make("bf_key")
    nonce, expires, mac = token.split(".")
    assert tokens.take("bf_other", token) is Submission.INVALID
    assert FormTokens("other").take("bf_key", token) is Submission.INVALID
    assert tokens.take("bf_key", f"{nonce}.{int(expires) + 60}.{mac}") is Submission.INVALID
    assert tokens.take("bf_key", "") is Submission.INVALID


def test_an_expired_token_is_invalid() -> None:
    tokens = FormTokens("create-key", lifetime=-1)
    assert tokens.take("bf_key", tokens.make("bf_key")) is Submission.INVALID
