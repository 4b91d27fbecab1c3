"""The ranges of an API key's settings that both auth and the CLI check.

Auth refuses a value outside them (INVALID_ARGUMENT naming the field); `farm key`
refuses the same values as usage errors before anything is sent.
"""

MAX_TTL_SECONDS = 10 * 365 * 24 * 60 * 60
"""The longest lifetime a new key may be given (10 years)."""
MAX_GRACE_SECONDS = 30 * 24 * 60 * 60
"""The longest a rotated key's old secret may keep working (30 days)."""
MAX_RATE = 100_000
"""The highest per-key request rate and burst an operator may set."""
