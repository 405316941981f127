"""The command line (SPEC 2): ``mud-gateway --config PATH | --demo | --check-config PATH``,
and subcommands (``mud-gateway token ...``, ``mud-gateway upgrade ...``): see :data:`SUBCOMMANDS`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from . import __version__, collector, upgrade
from .config import Config, ConfigError, demo_config, load_config
from .logs import setup_logging
from .routes import apply_config, create_app
from .sdnotify import sd_notify
from . import jsonstring

log = logging.getLogger("gateway")

#: Graceful stop: every browser told, every game closed, the process gone within this.
STOP_SECONDS = 8.0
#: An HTTP connection with no request in progress (none finished yet, or idle between
#: keep-alive requests) is closed after this. aiohttp's default is 3,630 s from the
#: connection's open, which let a request's headers, trickled or never finished, hold up to
#: ~2 MB for an hour (docs/security.md, "Slowloris"). 75 s: nginx's keepalive_timeout, above
#: the 60 s an nginx upstream keep-alive would wait, so a proxy never sends on a closing one.
HTTP_IDLE_SECONDS = 75.0


def make_runner(app: web.Application) -> web.AppRunner:
    """The runner of the gateway's HTTP server (signals are ours, access lines are not logged)."""
    return web.AppRunner(app, handle_signals=False, access_log=None, keepalive_timeout=HTTP_IDLE_SECONDS)


async def serve(config: Config, config_path: str | None = None, demo: bool = False,
                port_option: int | None = None) -> int:
    """Serve ``config`` until SIGTERM/SIGINT (SPEC 2); SIGHUP reloads ``config_path``, with
    ``port_option`` (``--port``) over its ``listen.port`` as at start."""
    loop = asyncio.get_running_loop()
    # Signals are ours from the start: a SIGTERM during start-up is a graceful stop too.
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    serving: list[web.Application] = []

    def reload() -> None:
        if config_path is None or not serving:
            log.info("SIGHUP: no config file to reload")
            return
        try:
            new = load_config(config_path)
        except ConfigError as exc:
            log.error("SIGHUP: config not reloaded: %s", exc)
            return
        if port_option is not None:
            new.listen.port = port_option
        apply_config(serving[0], new)
        setup_logging(new)
        log.info("SIGHUP: config reloaded from %s (sessions already playing keep their game's settings)",
                 config_path)
        warn_about(new)
        # The socket stays where it was: say so rather than let "reloaded" suggest it moved.
        if (new.listen.host, new.listen.port) != (config.listen.host, config.listen.port):
            log.warning("SIGHUP: listen changed in the config to %s:%d: ignored, still listening on "
                        "%s:%d (restart to move it)", new.listen.host, new.listen.port,
                        config.listen.host, config.listen.port)

    loop.add_signal_handler(signal.SIGHUP, reload)
    upgrader: list[upgrade.Upgrader] = []
    loop.add_signal_handler(signal.SIGUSR2, lambda: upgrader[0].request() if upgrader
                            else log.info("SIGUSR2 ignored: still starting"))
    # After an upgrade in place: the previous process's sockets and sessions (SPEC 6.1).
    inherited = upgrade.take_inherited()
    state = upgrade.read_handoff(inherited) if inherited is not None else None
    game = None
    if demo:
        from .demo import start_demo_game
        game = await start_demo_game()
        config = demo_config(game.port, config.listen.port)
    generation = inherited.generation + 1 if inherited is not None else 1
    app = create_app(config, generation)
    serving.append(app)
    runner = make_runner(app)
    await runner.setup()
    site: web.BaseSite
    listening = upgrade.inherited_listener(inherited)
    if listening is not None:
        site = web.SockSite(runner, listening)
    else:
        site = web.TCPSite(runner, config.listen.host, config.listen.port)
    if state is not None and inherited is not None:
        await upgrade.adopt(app, state, inherited)
    # The carried scrollback, decoded, holds every kept payload uncompressed: not kept for
    # the process's life (the sessions hold it compressed again: Session.from_state).
    state = None
    try:
        await site.start()
    except OSError as exc:
        # A record of the log (JSON with logging.format: json), not a plain line beside them:
        # the journal's one reason for the exit (and systemd's restart).
        log.error("cannot listen on %s:%d: %s", config.listen.host, config.listen.port,
                  exc.strerror or exc)
        await runner.cleanup()
        if game is not None:
            await game.close()
        return 1
    host, port = runner.addresses[0][:2]  # the real port when 0 was asked for
    url = f"http://{host}:{port}/"
    # Started: what start-up made and keeps is out of the cycle collector's full passes.
    gc_policy, gc_undo = collector.configure()
    log.info("mud-gateway %s listening on %s (games: %s; event loop: %s; game text escaper: %s; "
             "cycle collector: %s)",
             __version__, url, ", ".join(g.name for g in config.games),
             type(loop).__module__.partition(".")[0], "C" if jsonstring.COMPILED else "Python fallback",
             gc_policy)
    warn_about(config)
    if demo:
        print(f"mud-gateway: demo game on telnet 127.0.0.1:{game.port}", flush=True)

    print(f"mud-gateway: open {url}", flush=True)
    status = upgrade.Status(generation)
    status.write("serving")
    upgrader.append(upgrade.Upgrader(app, runner, site, config_path, status, stop, demo=demo))
    sd_notify("READY=1")
    # Signals held across an upgrade's exec are acted on from now on.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, upgrade.HELD_SIGNALS)
    await stop.wait()
    status.remove()
    if upgrader[0].task is not None and not upgrader[0].task.done():
        upgrader[0].task.cancel()
    log.info("stopping: closing sessions")
    sd_notify("STOPPING=1")
    try:
        await asyncio.wait_for(runner.cleanup(), STOP_SECONDS)
    except asyncio.TimeoutError:
        log.warning("stop took longer than %ss; exiting anyway", STOP_SECONDS)
    if game is not None:
        await game.close()
    if gc_undo is not None:
        gc_undo()
    return 0


def warn_about(config: Config) -> None:
    """Log, at start and at each reload, what in the config is likely a mistake though not an
    error: a variable it names that the environment lacks, and what that turns off (with
    ``security.auth.secret_env`` unset and ``required: true`` every socket is refused 403,
    and only the refusals, 10 in 10 s, would say why)."""
    auth = config.security.auth
    if auth.secret_env is not None and auth.resolved_secret() is None:
        log.warning("security.auth.secret_env names %s, which is unset or empty in the environment: %s",
                    auth.secret_env, "every socket is refused (auth.required)" if auth.required
                    else "tokens are ignored")
    if config.admin.token_env is not None and config.admin.token() is None:
        log.warning("admin.token_env names %s, which is unset or empty in the environment: "
                    "no admin API (404)", config.admin.token_env)


def _port(text: str) -> int:
    """``--port``: a TCP port as ``listen.port`` takes it (0-65535, 0 = any free one). The
    kernel would take 70000 as 4464 (its low 16 bits) and serve there as if asked to."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: 0 to 65535 (0 = any free one)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: 0 to 65535 (0 = any free one)")
    return port


def _token(argv: list[str]) -> int:
    from .token import main as token_main
    return token_main(argv)


#: ``mud-gateway NAME ARGS...`` runs ``SUBCOMMANDS[NAME](ARGS)`` (each parses its own
#: arguments); anything else is the server's own command line below.
SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "token": _token,
    "upgrade": upgrade.upgrade_command,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    parser = argparse.ArgumentParser(prog="mud-gateway",
                                     description="Play telnet MUDs in the browser.")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--config", metavar="PATH", help="serve the games in this YAML file")
    what.add_argument("--demo", action="store_true",
                      help="start the bundled demo game and a gateway for it (no config needed)")
    what.add_argument("--check-config", metavar="PATH", help="validate a config file and exit")
    parser.add_argument("--port", type=_port, help="listen on this port (overrides listen.port)")
    parser.add_argument("--version", action="version", version=f"mud-gateway {__version__}")
    parser.epilog = "subcommands: " + ", ".join(f"mud-gateway {name} --help" for name in SUBCOMMANDS)
    args = parser.parse_args(argv)

    if args.check_config:
        try:
            load_config(args.check_config)
        except ConfigError as exc:
            print(f"mud-gateway: {args.check_config}: {exc}", file=sys.stderr)
            return 2
        print(f"mud-gateway: {args.check_config}: ok")
        return 0
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"mud-gateway: {args.config}: {exc}", file=sys.stderr)
            return 2
    elif args.demo:
        config = demo_config(0)
    else:
        parser.error("one of --config, --demo or --check-config is required")
    if args.port is not None:
        config.listen.port = args.port
    setup_logging(config)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(serve(config, args.config, demo=args.demo, port_option=args.port))


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed (a dependency on Linux and macOS), else asyncio's own loop.

    With uvloop a round trip costs about a quarter less CPU and its p99 at 1,000
    players is about half (docs/performance.md, section 1.6). ``MUD_GATEWAY_LOOP=asyncio``
    in the environment keeps asyncio's loop.
    """
    if os.environ.get("MUD_GATEWAY_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
