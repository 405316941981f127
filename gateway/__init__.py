"""mud-gateway: play any telnet MUD in the browser.

The data path, one module per stage (browser -> game, and back):

    transport/serializer.py  Phoenix V1/V2 wire format             (pure)
    transport/websocket.py   the WebSocket adapter: outbox, backpressure, heartbeat (asyncio)
    transport/connection.py  the WebSocket connection's state machine (pure)
    transport/frames.py      WebSocket frames both ways, permessage-deflate (pure)
    transport/registry.py    the open sockets, counted by address
    router.py                Phoenix routing: heartbeats, joins, leaves, pushes
    channel.py               telnet:<uuid> topics: join payloads, pushes (pure)
    session.py               one game connection: seq, replay, linger (asyncio)
    telnet/input.py          player input to telnet bytes           (pure)
    telnet/stream.py         game bytes to events                   (pure)
    telnet/client.py         the telnet connection (telnetlib3)
    telnet/subnegotiation.py MSSP and CHARSET payloads              (pure)
    telnet/proxy.py          PROXY protocol headers                 (pure)

Around it: config.py (the YAML schema), routes.py (HTTP routes), auth.py
(tokens), gametext.py (game text as the browser gets it: the rule under both
the telnet side and the transport), sdnotify.py (systemd readiness), addresses.py (the player's address), nesting.py (JSON depth),
admin.py (the admin API), logs.py (log records), token.py (``mud-gateway
token``), webclient.py with web/ (the browser client), ratelimit.py (input token bucket), metrics.py (Prometheus),
replay.py (the resume buffer, pure), cli.py (the command line), demo.py (the
bundled demo game), upgrade.py (SIGUSR2: upgrade in place by exec) with
handoff.py (the state it hands over, pure).
"""

from importlib.metadata import PackageNotFoundError, version

try:  # written once, in pyproject.toml; read back from the installed package's metadata
    __version__ = version("mud-gateway")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
