"""The address the edge's check counts a console call's refused key against: its browser's.

The web console sends every key a browser gives it (typed in, or in its cookie) back
through Envoy, so the TCP peer Envoy names for the check is the console's own
address, shared by all its browsers. With its credential (role `console`) the
console names the browser too; the check then counts and blocks refused keys per
that browser, as it does for a client that calls the edge itself. The headers are
believed only with a valid, unrevoked console credential: anyone may send them.
"""

import ipaddress
import logging
from collections.abc import Mapping

from farm_core.console_headers import CONSOLE_CLIENT_HEADER, CONSOLE_CREDENTIAL_HEADER
from farm_core.errors import FarmError
from farm_core.identity import CredentialRole, IdentityVerifier

log = logging.getLogger(__name__)


class ConsoleClients:
    """Tells the address to count a check's refused key against, believing only the console."""

    def __init__(self, credentials: IdentityVerifier) -> None:
        self._credentials = credentials

    def counted_address(self, headers: Mapping[str, str], source_address: str) -> str:
        """The browser the console names, with a good console credential; else `source_address`."""
        credential = headers.get(CONSOLE_CREDENTIAL_HEADER)
        browser = headers.get(CONSOLE_CLIENT_HEADER, "").strip()
        if not credential or not browser:
            return source_address
        try:
            identity = self._credentials.decode(credential)
        except FarmError as refused:
            log.debug("a console credential was refused: %s", refused.message)
            return source_address
        if identity.role is not CredentialRole.CONSOLE:
            return source_address
        try:
            return str(ipaddress.ip_address(browser))
        except ValueError:
            return source_address
