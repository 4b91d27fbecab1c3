"""Which test modules go to one pytest-xdist worker together: those that share a farm.

`make test` hands test files to its workers one by one (`--dist loadfile`). Modules that
share a farm of their own are put in a subpackage of tests/e2e whose conftest starts
that farm (package-scoped); the whole subpackage is then one unit of work, run on one
worker, so the farm starts once, and stops as soon as the last of them has run.
"""

from pathlib import Path, PurePosixPath

from xdist.scheduler import LoadFileScheduling

E2E_FOLDER = PurePosixPath("tests", "e2e")


def farm_scope(relative: PurePosixPath) -> PurePosixPath:
    """The unit of work of the test file at `relative` (to the project's root).

    A file in a subpackage of tests/e2e: that subpackage; any other: the file itself.
    """
    if relative.parent != E2E_FOLDER and relative.is_relative_to(E2E_FOLDER):
        return E2E_FOLDER / relative.relative_to(E2E_FOLDER).parts[0]
    return relative


def path_scope(path: Path, root: Path) -> PurePosixPath:
    """farm_scope() of the test file at the absolute `path`, under the project's `root`."""
    return farm_scope(PurePosixPath(path.relative_to(root).as_posix()))


def nodeid_scope(nodeid: str) -> str:
    """farm_scope() of the file of the test `nodeid` (tests/e2e/x/test_y.py::test_z)."""
    return str(farm_scope(PurePosixPath(nodeid.split("::", 1)[0])))


class FarmScopeScheduling(LoadFileScheduling):
    """`--dist loadfile`, but a subpackage of tests/e2e is one unit (see farm_scope)."""

    def _split_scope(self, nodeid: str) -> str:
        return nodeid_scope(nodeid)
