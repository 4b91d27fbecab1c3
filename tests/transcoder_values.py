"""JSON values in a task's body and what Envoy's transcoder does with each.

auth's body check (farm_auth.json_values) is held to these tables by its unit tests
(tests/unit/auth/test_json_body.py), and the tables to the real transcoder by
tests/integration/cli/test_envoy_json_values.py.
"""

import json
from typing import Any

SPEC: dict[str, Any] = {"url": "https://example.com", "screenshot": {"fullPage": True}}
"""A valid task's body, which each case's fields are added to."""

# Values Envoy's transcoder refuses, naming the field by its proto path (spec.timeout_ms),
# or by none (`spec: Proto field is not repeating, cannot start list.`); held to the
# real transcoder by tests/integration/cli/test_envoy_json_values.py, as the lists below.
TRANSCODER_REFUSES: list[tuple[dict[str, Any], str]] = [
    ({"timeoutMs": "abc"}, 'timeoutMs: must be a whole number (int32), got "abc"'),
    ({"timeoutMs": 1.5}, "timeoutMs: must be a whole number (int32), got 1.5"),
    ({"timeoutMs": True}, "timeoutMs: must be a whole number (int32), got true"),
    ({"timeoutMs": "1e4"}, 'timeoutMs: must be a whole number (int32), got "1e4"'),
    ({"timeoutMs": ""}, 'timeoutMs: must be a whole number (int32), got ""'),
    ({"timeoutMs": []}, "timeoutMs: must be a number, got an array"),
    ({"timeoutMs": {}}, "timeoutMs: must be a number, got an object"),
    (
        {"maxAttempts": 99999999999},
        "maxAttempts: must be a whole number from -2147483648 to 2147483647 (int32), "
        "got 99999999999",
    ),
    ({"url": 5}, "url: must be a string, got 5"),
    ({"device": True}, "device: must be a string, got true"),
    ({"device": ["a"]}, "device: must be a string, got an array"),
    ({"labels": {"a": 5}}, 'labels["a"]: must be a string, got 5'),
    ({"labels": []}, "labels: must be an object of names and their values, got an array"),
    ({"screenshot": {"fullPage": 0}}, "screenshot.fullPage: must be true or false, got 0"),
    ({"screenshot": {"fullPage": ""}}, 'screenshot.fullPage: must be true or false, got ""'),
    ({"screenshot": 5}, "screenshot: must be an object (ScreenshotOptions), got 5"),
    ({"screenshot": [{}]}, "screenshot: must be an object (ScreenshotOptions), got an array"),
    ({"steps": [{"click": "a"}, 5]}, "steps[1]: must be an object (Step), got 5"),
    (
        {"steps": [{"click": "a"}, {"wait": {"ms": "x"}}]},
        'steps[1].wait.ms: must be a whole number (int32), got "x"',
    ),
    ({"steps": [{"back": ""}]}, 'steps[0].back: must be true or false, got ""'),
    (
        {"priority": "HIGH"},
        'priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got "HIGH"; '
        "did you mean 'PRIORITY_HIGH'?",
    ),
    (
        {"priority": True},
        "priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got true",
    ),
    (
        {"priority": 1.5},
        "priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got 1.5",
    ),
    ({"priority": ["PRIORITY_HIGH"]}, "priority: must be one name, got an array"),
    ({"setup": {"blockResources": ["NOPE"]}}, "setup.blockResources[0]: must be one of "),
    (
        {"setup": {"deviceScaleFactor": "abc"}},
        'setup.deviceScaleFactor: must be a number, got "abc"',
    ),
    ({"setup": {"deviceScaleFactor": True}}, "setup.deviceScaleFactor: must be a number, got true"),
    (
        {"setup": {"cookies": [{"name": "a", "value": "b", "expires": "9223372036854775808"}]}},
        "setup.cookies[0].expires: must be a whole number from ",
    ),
    (
        {"deadline": 5},
        'deadline: must be a time as an RFC 3339 string such as "2030-01-01T00:00:00Z", got 5',
    ),
    ({"deadline": []}, "deadline: must be a time as an RFC 3339 string"),
    (
        {"timeoutMs": "9" * 5000},  # more digits than int() takes
        'timeoutMs: must be a whole number from -2147483648 to 2147483647 (int32), got "999',
    ),
    ({"setup": {"deviceScaleFactor": "0x1p99999"}}, "setup.deviceScaleFactor: must be a number"),
    (
        {"priority": 2147483648},
        "priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got 2147483648",
    ),
    ({"setup": {"blockResources": ["1", "-1"]}}, "setup.blockResources[1]: must be one of "),
]
PRIORITIES = "priority: must be one of PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW, got"
FULL_PAGE = "screenshot.fullPage: must be true or false, got"
SCALE = "setup.deviceScaleFactor: must be a number, got"
# The transcoder reads only true/t/yes/y/1 and false/f/no/n/0 as booleans, in any case,
# with nothing around them.
TRANSCODER_REFUSES += [
    ({"screenshot": {"fullPage": text}}, f"{FULL_PAGE} {json.dumps(text)}")
    for text in ["on", "off", "2", "-1", "01", "+1", "1.0", "banana", "yess", " true", "true ",
                 "\ttrue", "1\n"]
]  # fmt: skip
# An enum's number must be an int32; as a string, one of the enum's numbers.
TRANSCODER_REFUSES += [
    ({"priority": number}, f"{PRIORITIES} {json.dumps(number)}")
    for number in [-2147483649, 4294967297, 1e10, 2147483648.0, "-1", "99", "2147483647", "-01",
                   "4294967297"]
]  # fmt: skip
# A double as a string is C's strtod's form, finite, with C's whitespace around it but no
# space first or last; of infinity and NaN, only protobuf JSON's spellings.
TRANSCODER_REFUSES += [
    ({"setup": {"deviceScaleFactor": text}}, f"{SCALE} {json.dumps(text)}")
    for text in [" 1.5", "1.5 ", "\t1.5 ", " \t1.5", "\u00a01.5", "inf", "-inf", "infinity",
                 "INFINITY", "+Infinity", "nan", "NAN", "-NaN", "+NaN", "1_0", "1e999", "-1e999",
                 "1.8e308", " 0x1p3", "0x1p3 ", "\u0661", "\uff11"]
]  # fmt: skip


# Values the transcoder takes: they must pass here too.
TRANSCODER_TAKES: list[dict[str, Any]] = [
    {"timeoutMs": "+5000"}, {"timeoutMs": "05000"}, {"timeoutMs": 12000.0}, {"timeoutMs": 1e4},
    {"timeoutMs": None}, {"screenshot": {"fullPage": "yes"}}, {"screenshot": {"fullPage": "false"}},
    {"priority": 1}, {"priority": "1"}, {"priority": 1.0}, {"priority": 99}, {"priority": None},
    {"labels": {"a": None}}, {"steps": {"click": "a"}}, {"steps": [[{"click": "a"}]]},
    {"steps": [None]}, {"setup": {"blockResources": "RESOURCE_TYPE_IMAGE"}},
    {"setup": {"deviceScaleFactor": "2"}}, {"setup": {"deviceScaleFactor": "NaN"}},
    {"screenshot": {"compare": {"baseline": "b", "mask": "#a", "threshold": "1e-1"}}},
    {"screenshot": {"compare": {"baseline": "b", "mask": [["#a"], None]}}},
    {"setup": {"cookies": [{"name": "a", "value": "b", "expires": 9223372036854775807}]}},
    {"deadline": {}}, {"deadline": None},
    {"timeoutMs": "0" * 5000 + "5"}, {"setup": {"deviceScaleFactor": "0x1p3"}},
    {"screenshot": {"compare": {"baseline": "b", "threshold": "0x.8"}}},
    {"audit": {"budget": {"cls": "-0X1.8P-2"}}},
    {"priority": 2147483647}, {"priority": -2147483648}, {"priority": -1}, {"priority": -1.0},
    {"priority": 2147483647.0}, {"priority": "0002"}, {"priority": "+2"}, {"priority": "-0"},
    {"priority": "00001"}, {"setup": {"blockResources": ["1", -1]}},
]  # fmt: skip
TRANSCODER_TAKES += [
    {"screenshot": {"fullPage": text}}
    for text in ["true", "TRUE", "tRuE", "t", "T", "yes", "YES", "y", "Y", "1",
                 "false", "False", "f", "F", "no", "nO", "n", "N", "0"]
]  # fmt: skip
TRANSCODER_TAKES += [
    {"setup": {"deviceScaleFactor": text}}
    for text in ["Infinity", "-Infinity", "\t1.5", "1.5\n", "\t 1.5", "1.5 \t", "\r\f\v1.5\n",
                 "\t0x1p3", "1e-999", "1.7976931348623158e308", "0x1.fffffffffffffp1023",
                 "0x1p-99999", "1.", ".5", "-.5", "+1", "00.5", "1E+5", "0x1.p3", "1.5\u0000x"]
]  # fmt: skip


# Values the transcoder refuses, left to it: a time string's form is its to judge.
LEFT_TO_THE_TRANSCODER: list[dict[str, Any]] = [{"deadline": "tomorrow"}]


# An object where a map's text belongs: the transcoder takes it, garbling it into bytes
# no service can read, so it is refused here although the transcoder would not.
GARBLED_BY_THE_TRANSCODER: list[tuple[dict[str, Any], str]] = [
    ({"labels": {"a": {}}}, 'labels["a"]: must be a string, got an object'),
]
