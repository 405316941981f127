"""The MUD Standards WebSocket endpoint ``/ws`` (SPEC 9), beside the Phoenix one.

* ``framing.py``: sans-I/O: the subprotocols' names and choice, game events to
  frames, client frames to commands (``terminal``, ``gmcp``, ``json``);
* ``relay.py``: sans-I/O: the client's bytes under ``telnet`` on their way to
  the game (NEW-ENVIRON IPADDRESS rewritten, lines counted for the rate limit);
* ``socket.py``: the asyncio adapter: the WebSocket after the 101 (a
  ``WebSocket`` underneath: outbox, backpressure, close handshake) and its
  one session (``sessions.py``).

The route and its handshake checks are in routes.py, with the Phoenix endpoint's.
"""
