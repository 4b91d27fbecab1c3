"""A session browser's profile whose download folder cannot be made: nothing is ever saved.

The agent turns every context's downloads to `deny` (sessions/browser.py), but Chromium
puts its own default back (save to HOME/Downloads) for what an attached client's
connection set once that connection ends, until the agent denies them again. A
download that starts in that instant would be saved. With the profile's download
folder (and its "save as" folder) under a regular file, Chromium cannot make it,
whoever runs the agent (root too): such a download is cancelled instead.
"""

import json
from pathlib import Path

BLOCKER = "no-downloads"
"""A regular file in the profile folder; the download folder is said to be inside it."""


def refuse_default_downloads(profile: Path) -> None:
    """Writes the fresh `profile`'s preferences so that a download has nowhere to go."""
    blocker = profile / BLOCKER
    blocker.write_bytes(b"")
    nowhere = str(blocker / "downloads")
    preferences = {
        "download": {"default_directory": nowhere, "prompt_for_download": False},
        "savefile": {"default_directory": nowhere},
    }
    (profile / "Default").mkdir(exist_ok=True)
    (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
