"""Which Chromium task browsers launch: the headless shell when installed, else Chromium."""

from pathlib import Path

from farm_agent.browser.chromium import task_browser_executable
from farm_agent.settings import AgentSettings


def test_the_headless_shell_is_launched_when_it_is_installed(tmp_path: Path) -> None:
    shell = tmp_path / "chromium-headless-shell"
    shell.write_text("#!/bin/sh\n")
    shell.chmod(0o755)
    assert task_browser_executable(shell, Path("/usr/bin/chromium")) == shell


def test_chromium_is_launched_when_the_headless_shell_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "chromium-headless-shell"
    assert task_browser_executable(missing, Path("/usr/bin/chromium")) == Path("/usr/bin/chromium")


def test_the_default_shell_is_the_binary_itself_not_debians_wrapper_script() -> None:
    # The wrapper would stay as the browser's parent with the browser's arguments.
    default = AgentSettings.model_fields["headless_shell_path"].default
    assert default == Path("/usr/lib/chromium/chromium-headless-shell")
