"""Which of a tenant's profiles and baselines a grant lets an agent's call use.

The scheduler's grant names the profile and baselines of its task's spec (or its
session's profile, or one session command's baselines); a call for any other name
is refused before it reads or writes anything (docs/security.md, "Baselines and
profiles").
"""

from farm_core.errors import PermissionDenied
from farm_core.grants import UploadGrant
from farm_core.sessions import SESSION_ID_PATTERN


class GrantNameCheck:
    """Refuses a baseline or profile call for a name its grant does not list."""

    def __init__(self, unnamed_grants_tenant_wide: bool = False) -> None:
        # A grant older than names (no `names` at all): tenant-wide while this is on,
        # for a rolling upgrade's window; else it names nothing.
        self._unnamed_tenant_wide = unnamed_grants_tenant_wide

    def load_profile(self, grant: UploadGrant, name: str) -> None:
        """Refuses unless `grant` names profile `name`."""
        if not (self._widened(grant) or grant.may_load_profile(name)):
            raise PermissionDenied(f'grant: profile "{name}" is not this {_owner(grant)}\'s')

    def save_profile(self, grant: UploadGrant, name: str) -> None:
        """Refuses unless `grant` names profile `name` to save."""
        if self._widened(grant) or grant.may_save_profile(name):
            return
        if grant.may_load_profile(name):
            raise PermissionDenied(
                f'grant: profile "{name}" is this {_owner(grant)}\'s to load, not to save'
            )
        raise PermissionDenied(f'grant: profile "{name}" is not this {_owner(grant)}\'s')

    def baseline(self, grant: UploadGrant, name: str) -> None:
        """Refuses unless `grant` names baseline `name`."""
        if not (self._widened(grant) or grant.may_use_baseline(name)):
            raise PermissionDenied(f'grant: baseline "{name}" is not this {_owner(grant)}\'s')

    def _widened(self, grant: UploadGrant) -> bool:
        return grant.names is None and self._unnamed_tenant_wide


def _owner(grant: UploadGrant) -> str:
    """What the grant is for, as a refusal names it."""
    return "session" if SESSION_ID_PATTERN.fullmatch(grant.owner_id) else "task"
