"""Upgrade in place (SPEC 6.1): ``SIGUSR2`` execs the installed version, keeping every telnet connection.

The old process (``Upgrader``): checks the installed version's view of the
config in a child process, tells systemd ``RELOADING=1``, stops accepting
(the listening socket stays open: new connections wait in its backlog),
asks MCCP2 games to end compression, freezes the games (no more reads: what
they send waits in the kernel), ends the sessions that cannot be carried
(TLS, compression still on, output to the game that will not drain) with
``disconnect`` ``"gateway shutdown"``, answers and closes every WebSocket
with 1012, writes the sessions' state (handoff.py) into a memfd, and
``exec``s the same interpreter with the same arguments; the descriptors
(state, listening socket, game sockets) ride in ``$MUD_GATEWAY_HANDOFF``.

The new process (``take_inherited``, ``read_handoff``, ``adopt``) reads the
state, adopts the listening socket and each game socket, rebuilds the
sessions (they linger from the moment the upgrade closed their browsers) and
serves the resumes. A state it cannot read: the game sockets are closed, the
reason logged, new sessions served.

``mud-gateway upgrade --pid PID`` (``upgrade_command``) signals and waits on
the status file the gateway keeps in its systemd ``RuntimeDirectory``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from aiohttp import web

from . import __version__, handoff
from .aiohttp_private import listening_server
from .config import Game
from .handoff import Handoff, HandoffError
from .logs import log_event
from .sdnotify import sd_notify
from .routes import GENERATION, SESSIONS, SOCKETS
from .session import Session

log = logging.getLogger("gateway.upgrade")

#: ``state=<fd> listen=<fd> games=<fd>,<fd>... generation=<G>`` for the new process.
ENV = "MUD_GATEWAY_HANDOFF"
#: Held (blocked) across the exec; the new process acts on them once it serves.
HELD_SIGNALS = {signal.SIGUSR2, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
CHECK_SECONDS = 60.0        # the installed version's --check-config
MCCP2_END_SECONDS = 2.0     # for games asked to end compression
DRAIN_SECONDS = 2.0         # for output to the games still in our buffers


# -- the status file (for `mud-gateway upgrade --pid`) ---------------------------

def status_dirs() -> list[Path]:
    """Where a gateway keeps its status file, first choice first (the unit's RuntimeDirectory)."""
    dirs = []
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        dirs.append(Path(runtime.split(":")[0]))
    dirs.append(Path("/run/mud-gateway"))
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        dirs.append(Path(xdg))
    dirs.append(Path(tempfile.gettempdir()))
    return dirs


def status_path(pid: int) -> Path:
    """The file this process writes: in the first usable directory of ``status_dirs()``."""
    name = f"mud-gateway.{pid}.json"
    for directory in status_dirs():
        if directory.is_dir() and os.access(directory, os.W_OK):
            return directory / name
    return Path(tempfile.gettempdir()) / name


def find_status(pid: int) -> Path | None:
    for directory in status_dirs():
        path = directory / f"mud-gateway.{pid}.json"
        if path.exists():
            return path
    return None


class Status:
    """This process's status file: generation, whether an upgrade runs, how the last one ended."""

    def __init__(self, generation: int) -> None:
        self.path = status_path(os.getpid())
        self.generation = generation
        self.state = "starting"
        self.last_result: str | None = None
        self.reason: str | None = None

    def write(self, state: str, last_result: str | None = None, reason: str | None = None) -> None:
        self.state = state
        if last_result is not None:
            self.last_result, self.reason = last_result, reason
        data = json.dumps({"pid": os.getpid(), "version": __version__, "generation": self.generation,
                           "state": state, "last_result": self.last_result, "reason": self.reason,
                           "updated": time.time()})
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(data)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write the status file %s: %s", self.path, exc)

    def remove(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# -- the new process: what it inherited -----------------------------------------

class Inherited(NamedTuple):
    state_fd: int
    listen_fd: int | None
    game_fds: list[int]
    generation: int  # of the process that wrote the state


def take_inherited() -> Inherited | None:
    """The descriptors the previous process handed over (and the variable removed), or None."""
    raw = os.environ.pop(ENV, None)
    if not raw:
        return None
    try:
        fields = dict(part.split("=", 1) for part in raw.split())
        games = [int(fd) for fd in fields.get("games", "").split(",") if fd]
        listen = int(fields["listen"]) if fields.get("listen") else None
        return Inherited(int(fields["state"]), listen, games, int(fields.get("generation", "1")))
    except (ValueError, KeyError):
        log.error("upgrade: %s=%r is not a handoff; starting afresh", ENV, raw)
        return None


def inherited_listener(inherited: Inherited | None) -> socket.socket | None:
    """The listening socket the previous process handed over, or None (then: listen afresh)."""
    if inherited is None or inherited.listen_fd is None:
        return None
    try:
        return socket.socket(fileno=inherited.listen_fd)
    except OSError as exc:
        log.error("upgrade: the inherited listening socket (fd %d) is unusable: %s; listening afresh",
                  inherited.listen_fd, exc)
        return None


def read_handoff(inherited: Inherited) -> Handoff | None:
    """The state the previous process wrote; None (game sockets closed, reason logged) when unreadable."""
    try:
        with open(inherited.state_fd, "rb", closefd=True) as f:
            f.seek(0)
            data = f.read()
        state = handoff.decode(data)
        unknown = {s.fd for s in state.sessions} - set(inherited.game_fds)
        if unknown:
            raise HandoffError(f"the state names descriptors not handed over: {sorted(unknown)}")
        return state
    except (OSError, HandoffError) as exc:
        log.error("upgrade: cannot read the previous process's state (%s): closing its %d game "
                  "connections, serving new sessions", exc, len(inherited.game_fds))
        close_fds(inherited.game_fds)
        return None


def close_fds(fds: list[int]) -> None:
    for fd in fds:
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            try:
                os.close(fd)
            except OSError:
                pass
            continue
        try:
            sock.shutdown(socket.SHUT_RDWR)  # the game sees the end even if another copy lives
        except OSError:
            pass
        sock.close()


def _game(state: handoff.SessionState, app: web.Application) -> Game | None:
    """The session's own settings (a session keeps them, as across SIGHUP), else the config's."""
    try:
        return msgspec.convert(state.game_settings, Game)
    except msgspec.ValidationError:
        return app[SESSIONS].config.game(state.game)


async def adopt(app: web.Application, state: Handoff, inherited: Inherited) -> int:
    """Rebuild the sessions of ``state`` on their inherited sockets; returns how many were carried."""
    manager = app[SESSIONS]
    manager.mssp.update(state.mssp)
    if state.listen is not None:
        listen = manager.config.listen
        if (listen.host, listen.port) != (state.listen.host, state.listen.port):
            log.warning("upgrade: listen changed in the config to %s:%d: ignored, the socket on %s:%d "
                        "is inherited (restart to move it)", listen.host, listen.port,
                        state.listen.host, state.listen.port)
    carried = 0
    used = set()
    for st in state.sessions:
        used.add(st.fd)
        game = _game(st, app)
        if game is None or st.key in manager.sessions:
            log.error("upgrade: session of game %s cannot be rebuilt; its connection is closed", st.game)
            close_fds([st.fd])
            continue
        session = Session.from_state(st, game, manager)
        manager.add(session)
        try:
            await session.adopt(socket.socket(fileno=st.fd), st)
        except Exception as exc:  # one bad session must not stop the others
            log.error("upgrade: session of game %s not adopted: %s", st.game, exc)
            manager.forget(session)
            close_fds([st.fd])
            continue
        carried += 1
    close_fds([fd for fd in inherited.game_fds if fd not in used])
    metrics = manager.metrics.upgrade_sessions
    metrics.labels("carried").inc(carried)
    metrics.labels("ended").inc(state.ended)
    log_event(log, logging.INFO, "upgrade_done",
              f"upgrade: generation {app[GENERATION]}: {carried} sessions carried, "
              f"{state.ended} ended by the upgrade",
              generation=app[GENERATION], carried=carried, ended=state.ended)
    return carried


# -- the old process: the handoff -------------------------------------------------

async def check_installed(config_path: str) -> str | None:
    """Run the installed version's ``--check-config``: None when it passes, else why not."""
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "--check-config", config_path,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        return f"cannot run {sys.executable}: {exc}"
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CHECK_SECONDS)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return f"--check-config gave no answer within {CHECK_SECONDS:g}s"
    if proc.returncode == 0:
        return None
    lines = (err or out).decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"--check-config exited {proc.returncode}"


class Upgrader:
    """Acts on SIGUSR2 in a serving gateway."""

    def __init__(self, app: web.Application, runner: web.AppRunner, site: web.BaseSite,
                 config_path: str | None, status: Status, stop: asyncio.Event, demo: bool = False) -> None:
        self.app = app
        self.stop = stop  # set by SIGTERM/SIGINT
        self.runner = runner
        self.site = site
        self.config_path = config_path
        self.status = status
        self.demo = demo
        self.busy = False
        self.task: asyncio.Task[None] | None = None

    def request(self) -> None:
        """The SIGUSR2 handler."""
        if self.demo:
            log.info("SIGUSR2 ignored: in --demo mode the demo game lives in this process")
            return
        if self.config_path is None:
            log.info("SIGUSR2 ignored: no config file")
            return
        if self.busy:
            log.info("SIGUSR2 ignored: an upgrade is already under way")
            return
        self.busy = True
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            await self._upgrade()
        except Exception:
            log.exception("upgrade failed")
            self.status.write("serving", "failed", "internal error (see the log)")
        finally:
            self.busy = False

    async def _upgrade(self) -> None:
        assert self.config_path is not None
        self.status.write("upgrading")
        reason = await check_installed(self.config_path)
        if reason is not None:
            log_event(log, logging.ERROR, "upgrade_abandoned", f"SIGUSR2: upgrade abandoned: {reason}",
                      reason=reason)
            self.status.write("serving", "abandoned", reason)
            return
        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        log.info("SIGUSR2: the installed version accepts %s; upgrading in place", self.config_path)
        manager = self.app[SESSIONS]

        # Stop accepting; a duplicate keeps the socket (and its backlog) open.
        server = listening_server(self.site)
        listen_fd = os.dup(server.sockets[0].fileno())
        server.close()
        try:
            reason = await self._swap(listen_fd)  # returns only when the exec failed
        except Exception as exc:
            log.exception("upgrade: the swap failed; this process goes on")
            reason = f"swap failed: {exc}"
        # Still here: go on serving with what we have (browsers reconnect and resume).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)
        manager.handing_over = False
        for s in list(manager.sessions.values()):
            s.thaw()
        self.site = web.SockSite(self.runner, socket.socket(fileno=listen_fd))
        await self.site.start()
        self.status.write("serving", "failed", reason)
        sd_notify("READY=1")

    async def _swap(self, listen_fd: int) -> str:
        """Hand the sessions over and exec; returns why (after undoing the handoff) only if the exec fails."""
        manager = self.app[SESSIONS]
        # MCCP2: ask the games to end compression (they end the zlib stream, then plain telnet).
        asked = [s for s in manager.sessions.values() if s.client is not None and s.client.stream.compressing]
        for s in asked:
            s.client.end_compression()  # type: ignore[union-attr]
        deadline = time.monotonic() + MCCP2_END_SECONDS
        while any(s.client.stream.compressing for s in asked if not s.ended) and time.monotonic() < deadline:  # type: ignore[union-attr]
            await asyncio.sleep(0.05)

        # Freeze the games, end what cannot be carried, close the browsers (1012).
        manager.handing_over = True
        ended = sum(1 for s in asked if s.ended)  # compression not ended cleanly (a corrupt stream)
        ended += self._freeze_and_sort(manager)
        await asyncio.gather(*(s.restart() for s in list(self.app[SOCKETS])), return_exceptions=True)
        ended += self._freeze_and_sort(manager)  # sessions whose join finished meanwhile
        deadline = time.monotonic() + DRAIN_SECONDS
        while any(s.client.unsent() for s in manager.sessions.values()) and time.monotonic() < deadline:  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
        for s in list(manager.sessions.values()):
            if s.client.unsent():  # type: ignore[union-attr]
                s.end("gateway shutdown")
                ended += 1

        # From here on signals wait for the new process. One caught just before the block
        # has its handler still to run: let the loop run it, and pass a stop on.
        signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
        for _ in range(3):
            await asyncio.sleep(0)
        if self.stop.is_set():
            os.kill(os.getpid(), signal.SIGTERM)  # pending (blocked): the new process stops gracefully
        for s in list(manager.live()):  # a game that hung up meanwhile, or still being dialled
            if s.client is None or not s.client.carriable:  # dialled: no connection to hand over
                s.end("gateway shutdown")
                ended += 1

        sessions = list(manager.sessions.values())
        fds = [s.client.raw_socket().fileno() for s in sessions]  # type: ignore[union-attr]
        state = Handoff(generation=self.app[GENERATION],
                        listen=handoff.Listen(manager.config.listen.host, manager.config.listen.port),
                        mssp=manager.mssp, sessions=[s.to_state(fd) for s, fd in zip(sessions, fds)],
                        ended=ended)
        memfd = os.memfd_create("mud-gateway-handoff", 0)
        try:
            with open(memfd, "wb", closefd=False) as f:
                f.write(handoff.encode(state))
            for fd in (memfd, listen_fd, *fds):
                os.set_inheritable(fd, True)
            env = dict(os.environ)
            env[ENV] = (f"state={memfd} listen={listen_fd} games={','.join(map(str, fds))} "
                        f"generation={self.app[GENERATION]}")
            argv = list(sys.orig_argv)
            log_event(log, logging.INFO, "upgrade_exec",
                      f"upgrade: exec {' '.join(argv)}: {len(sessions)} sessions carried, {ended} ended "
                      "(TLS, MCCP2, or output the game did not take)",
                      generation=self.app[GENERATION], carried=len(sessions), ended=ended)
            for handler in logging.getLogger().handlers:
                handler.flush()
            try:
                os.execve(sys.executable, argv, env)
            except OSError as exc:
                log.error("upgrade: exec %s failed: %s; this process goes on", sys.executable, exc)
                return f"exec failed: {exc.strerror}"
            return "exec returned"  # execve does not return on success
        finally:
            os.close(memfd)
            for fd in (listen_fd, *fds):
                os.set_inheritable(fd, False)

    @staticmethod
    def _freeze_and_sort(manager: Any) -> int:
        """Stop reading every game; end the sessions that cannot be carried. Returns how many ended."""
        ended = 0
        for s in list(manager.sessions.values()):
            s.freeze()
            if not s.client.carriable:
                log.info("upgrade: session of game %s cannot be carried (%s): ended", s.game.name,
                         "TLS" if s.game.tls else "compressed" if s.client.stream.compressing else "closed")
                s.end("gateway shutdown")
                ended += 1
        return ended


# -- `mud-gateway upgrade --pid PID` ----------------------------------------------

def upgrade_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mud-gateway upgrade",
        description="Upgrade a running gateway in place (SIGUSR2) and wait for the new generation.")
    parser.add_argument("--pid", type=int, required=True, help="the gateway's process id (systemd's MAINPID)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="give up after this long (default 60)")
    args = parser.parse_args(argv)

    def fail(reason: str) -> int:
        print(f"mud-gateway upgrade: {reason}", file=sys.stderr)
        return 1

    path = find_status(args.pid)
    before = read_status(path) if path is not None else None
    if path is None or before is None:
        return fail(f"no status file for pid {args.pid} in {', '.join(map(str, status_dirs()))} "
                    "(is it a mud-gateway? its RuntimeDirectory?)")
    if before.get("state") == "upgrading":
        return fail("an upgrade is already under way")
    generation = before.get("generation", 0)
    started = time.time()
    try:
        os.kill(args.pid, signal.SIGUSR2)
    except OSError as exc:
        return fail(f"cannot signal pid {args.pid}: {exc.strerror}")
    deadline = time.monotonic() + args.timeout
    now = before
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = read_status(path) or now
        if now.get("generation", 0) > generation and now.get("state") == "serving":
            print(f"mud-gateway upgrade: pid {args.pid} serves generation {now['generation']} "
                  f"(version {now.get('version')})")
            return 0
        if (now.get("state") == "serving" and now.get("last_result") in ("abandoned", "failed")
                and now.get("updated", 0) >= started):
            return fail(f"upgrade {now['last_result']}: {now.get('reason')}")
        try:
            os.kill(args.pid, 0)
        except ProcessLookupError:
            return fail(f"pid {args.pid} exited")
        except PermissionError:
            pass
    return fail(f"timed out after {args.timeout:g}s (status: {now.get('state')})")
