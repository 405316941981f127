"""systemd's readiness protocol (sd_notify(3)): READY=1, RELOADING=1, STOPPING=1.

Used by the command line (cli.py: start and stop) and the upgrade in place
(upgrade.py: the swap and the new generation), so that neither imports the other.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("gateway")


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) about our state, when started by it."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(path)
            s.sendall(message.encode())
    except OSError as exc:
        log.warning("sd_notify failed: %s", exc)
