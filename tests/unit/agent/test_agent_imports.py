"""What an idle agent loads: the heavy libraries of rare work wait for that work."""

import subprocess
import sys

# numpy and Pillow (screenshot comparisons) and imageio-ffmpeg (videos): about 30 MiB
# of an idle agent's memory, which issue 12 budgets at 300 MiB with its browser.
LOADED_ON_DEMAND = ("numpy", "PIL", "imageio_ffmpeg")


def test_starting_an_agent_loads_no_library_of_rare_work() -> None:
    probe = (
        "import sys, farm_agent.__main__; "
        f"print(','.join(m for m in {LOADED_ON_DEMAND!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
