"""docs/sdk.md gives each client option its real default."""

import dataclasses
import re
from pathlib import Path

import pytest

from browserfarm import ClientOptions

SDK_DOC = (Path(__file__).resolve().parents[3] / "docs" / "sdk.md").read_text()
# Set from the environment, and described there with it rather than as `name` (value).
FROM_THE_ENVIRONMENT = {"url", "api_key", "ca_file"}
OPTIONS = [
    field for field in dataclasses.fields(ClientOptions) if field.name not in FROM_THE_ENVIRONMENT
]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda field: field.name)
def test_the_sdk_doc_gives_each_option_its_default(option: dataclasses.Field[object]) -> None:
    # "`timeout` (one call, 30 s)", "`transport` (`"grpc"`, or `"http"`; ..., else `"grpc"`)":
    # the default is the last number, or the last quoted word, in the parentheses.
    stated = re.search(rf"`{option.name}`\s*\(([^)]*)\)", SDK_DOC)
    assert stated is not None, f"docs/sdk.md does not give `{option.name}` a default"
    if isinstance(option.default, str):
        said: object = re.findall(r'"(\w+)"', stated.group(1))[-1]
    else:
        said = float(re.findall(r"\d+(?:\.\d+)?", stated.group(1))[-1])
    assert said == option.default, (
        f"`{option.name}`: docs/sdk.md says {said}, the code {option.default}"
    )
