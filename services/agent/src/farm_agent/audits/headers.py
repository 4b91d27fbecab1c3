"""The security header checks of the best-practices audit, after Mozilla's HTTP Observatory.

Each check fails with the penalty the Observatory gives the same result; see
docs/tasks.md for the table.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from farm_agent.audits.observer import DocumentResponse
from farm_agent.audits.report import Check, Impact, failed, passed

HSTS_LEAST_MAX_AGE = 15552000
"""Six months in seconds (the Observatory's figure): a shorter HSTS max-age is weak."""

SAFE_REFERRER_POLICIES = frozenset(
    {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
)
LEAKY_REFERRER_POLICIES = frozenset({"origin", "origin-when-cross-origin", "unsafe-url"})
KNOWN_REFERRER_POLICIES = (
    SAFE_REFERRER_POLICIES | LEAKY_REFERRER_POLICIES | {"no-referrer-when-downgrade"}
)


def impact_of_penalty(penalty: int) -> Impact:
    """How bad a failure is by its penalty: 30 or more critical, 20 serious, 10 moderate."""
    if penalty >= 30:
        return "critical"
    if penalty >= 20:
        return "serious"
    if penalty >= 10:
        return "moderate"
    return "minor"


def observatory_failure(
    check_id: str, penalty: int, title: str, hint: str, targets: tuple[str, ...] = ()
) -> Check:
    """A failed best-practices check worth `penalty` points."""
    return failed(check_id, impact_of_penalty(penalty), title, hint, targets, penalty=penalty)


@dataclass(frozen=True)
class ContentSecurityPolicy:
    """The enforced policies of a page (Content-Security-Policy headers), parsed."""

    policies: tuple[Mapping[str, tuple[str, ...]], ...]

    @classmethod
    def parse(cls, header: str | None) -> "ContentSecurityPolicy":
        """Policies split at "," (one per header), directives at ";", sources at spaces."""
        policies = []
        for text in (header or "").split(","):
            directives: dict[str, tuple[str, ...]] = {}
            for directive in text.split(";"):
                words = directive.lower().split()
                # A directive named twice: browsers take the first.
                if words and words[0] not in directives:
                    directives[words[0]] = tuple(words[1:])
            if directives:
                policies.append(directives)
        return cls(tuple(policies))

    def script_sources(self) -> list[tuple[str, ...]]:
        """The script sources of each policy that restricts scripts (script-src or default-src)."""
        return [
            policy.get("script-src", policy.get("default-src", ()))
            for policy in self.policies
            if "script-src" in policy or "default-src" in policy
        ]

    def has(self, directive: str) -> bool:
        """Whether some policy sets `directive`."""
        return any(directive in policy for policy in self.policies)


def _allows_inline(sources: tuple[str, ...]) -> bool:
    # A nonce or hash makes browsers ignore 'unsafe-inline' (CSP level 2 on).
    guarded = any(
        source.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for source in sources
    )
    return "'unsafe-inline'" in sources and not guarded


def csp(document: DocumentResponse) -> Check:
    """A Content-Security-Policy that restricts scripts without 'unsafe-inline' or 'unsafe-eval'."""
    title = "A Content-Security-Policy header restricts scripts"
    policy = ContentSecurityPolicy.parse(document.header("content-security-policy"))
    if not policy.policies:
        return observatory_failure(
            "csp",
            25,
            title,
            "The page sends no Content-Security-Policy, so injected scripts can run; send "
            "one, e.g. \"default-src 'self'\".",
        )
    script_sources = policy.script_sources()
    if not script_sources:
        return observatory_failure(
            "csp", 20, title, "The policy sets neither script-src nor default-src; add one."
        )
    if all(_allows_inline(sources) for sources in script_sources):
        return observatory_failure(
            "csp",
            20,
            title,
            "The policy allows 'unsafe-inline' scripts; move inline scripts to files or allow "
            "them by nonce or hash.",
        )
    if all("'unsafe-eval'" in sources for sources in script_sources):
        return observatory_failure(
            "csp", 10, title, "The policy allows 'unsafe-eval'; stop evaluating strings as code."
        )
    return passed("csp")


def hsts(document: DocumentResponse) -> Check:
    """Strict-Transport-Security with a max-age of at least six months (https pages only)."""
    title = "Strict-Transport-Security keeps browsers on https for six months or more"
    max_age = hsts_max_age(document.header("strict-transport-security"))
    if max_age is None:
        return observatory_failure(
            "hsts",
            20,
            title,
            "The page sends no Strict-Transport-Security that browsers can read (none, one "
            'sent twice or malformed); send "Strict-Transport-Security: max-age=63072000; '
            'includeSubDomains".',
        )
    if max_age < HSTS_LEAST_MAX_AGE:
        return observatory_failure(
            "hsts",
            10,
            title,
            f"Strict-Transport-Security's max-age is {max_age} s; make it at least "
            f"{HSTS_LEAST_MAX_AGE} (six months).",
        )
    return passed("hsts")


def hsts_max_age(header: str | None) -> int | None:
    """The max-age of a Strict-Transport-Security header; None when absent or malformed."""
    if header is None or "," in header:  # Sent twice: browsers take neither.
        return None
    for directive in header.split(";"):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age":
            try:
                return int(value.strip().strip('"'))
            except ValueError:
                return None
    return None


def content_type_options(document: DocumentResponse) -> Check:
    """X-Content-Type-Options: nosniff."""
    value = document.header("x-content-type-options")
    if value is not None and value.strip().lower() == "nosniff":
        return passed("x-content-type-options")
    return observatory_failure(
        "x-content-type-options",
        5,
        "X-Content-Type-Options is nosniff",
        'The page sends no "X-Content-Type-Options: nosniff", so browsers may guess its '
        "content types; send it.",
    )


def frame_protection(document: DocumentResponse) -> Check:
    """X-Frame-Options DENY or SAMEORIGIN, or a CSP frame-ancestors directive."""
    policy = ContentSecurityPolicy.parse(document.header("content-security-policy"))
    frame_options = (document.header("x-frame-options") or "").strip().lower()
    if policy.has("frame-ancestors") or frame_options in ("deny", "sameorigin"):
        return passed("frame-protection")
    return observatory_failure(
        "frame-protection",
        20,
        "Other sites cannot frame the page",
        "Other sites can frame the page (clickjacking): "
        + (
            f"X-Frame-Options {frame_options!r} is not understood"
            if frame_options
            else "it sends neither X-Frame-Options nor a CSP frame-ancestors"
        )
        + '; send "Content-Security-Policy: frame-ancestors \'self\'" or "X-Frame-Options: '
        'DENY".',
    )


def referrer_policy(document: DocumentResponse) -> Check:
    """No Referrer-Policy (browsers default to a safe one), or one that does not leak paths."""
    header = document.header("referrer-policy")
    if header is None:
        return passed("referrer-policy")
    known = [
        token.strip().lower()
        for token in header.split(",")
        if token.strip().lower() in KNOWN_REFERRER_POLICIES
    ]
    policy = known[-1] if known else None
    if policy is not None and policy not in LEAKY_REFERRER_POLICIES:
        return passed("referrer-policy")
    reason = (
        f"{policy!r} sends the page's address to other sites"
        if policy
        else "it is not a known policy"
    )
    return observatory_failure(
        "referrer-policy",
        5,
        "Referrer-Policy keeps the page's address from other sites",
        f'Referrer-Policy "{header}": {reason}; use "strict-origin-when-cross-origin".',
    )
