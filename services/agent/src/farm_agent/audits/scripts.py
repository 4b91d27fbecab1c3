"""The audits' page functions (scripts/*.js), each with the selector helper in scope."""

import functools
from importlib import resources


@functools.cache
def page_function(name: str) -> str:
    """The function expression of scripts/<name>.js, able to call selectorOf(element)."""
    folder = resources.files(__package__).joinpath("scripts")
    helper = folder.joinpath("selector.js").read_text()
    body = folder.joinpath(f"{name}.js").read_text()
    return f"(argument) => {{\n{helper}\nreturn ({body.strip()})(argument);\n}}"
