"""An extract action's field rule ("a@href[]"), read the same way by the scheduler and the agent."""

import re
from dataclasses import dataclass

# "a@href": the part after the last "@" is an attribute name when it looks like one;
# "@href" is that attribute with no selector (which the scheduler refuses).
_ATTRIBUTE = re.compile(r"^(?P<selector>.*)@(?P<attribute>[A-Za-z_:][-A-Za-z0-9_:.]*)$")


@dataclass(frozen=True)
class ExtractField:
    """One extract rule parsed: "a@href[]" is selector "a", attribute "href", every match."""

    selector: str
    attribute: str | None
    every_match: bool

    @classmethod
    def parse(cls, rule: str) -> "ExtractField":
        """Parses "sel", "sel@attr", "sel[]" or "sel@attr[]"."""
        every_match = rule.endswith("[]")
        body = rule.removesuffix("[]") if every_match else rule
        matched = _ATTRIBUTE.match(body)
        if matched is None:
            return cls(body, None, every_match)
        return cls(matched["selector"], matched["attribute"], every_match)
