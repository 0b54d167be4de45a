"""What `teaim serve` checks before it listens: development identity stays on this machine."""

from __future__ import annotations

import ipaddress

from interfaces.settings import Settings


class UnsafeBindError(Exception):
    """Serving these settings on this address would hand out identities to anyone."""


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine.

    Names other than `localhost` are not resolved: what they point at can change, so they
    count as reachable from outside (as do the wildcard addresses 0.0.0.0 and ::).
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_dev_auth_bind(settings: Settings, host: str, *, allow_remote: bool = False) -> None:
    """Refuse DEV_AUTH on an address others can reach, unless explicitly forced.

    With DEV_AUTH on, an X-Dev-User header is a full identity: on a reachable address anyone
    could act as any user of any org.
    """
    if not settings.dev_auth or is_loopback(host):
        return
    if allow_remote or settings.dev_auth_allow_remote:
        return
    raise UnsafeBindError(
        f"DEV_AUTH is on and {host!r} is not a loopback address: anyone reaching it could claim"
        " any identity. Serve on 127.0.0.1, turn DEV_AUTH off, or force it with"
        " --allow-dev-auth-remote (DEV_AUTH_ALLOW_REMOTE=1)."
    )
