"""MSDP with a real game: Evennia (PyPI) speaks MSDP from its portal's out-of-band module (telnet_oob.py).

The gateway says DO to its WILL MSDP; a browser's gmcp push of module "MSDP" goes to Evennia as
MSDP, and Evennia's MSDP answers come back as gmcp events of module "MSDP" in their JSON form
(SPEC 5). Evennia sends every out-of-band message as MSDP and as GMCP once both are on.
"""

from __future__ import annotations

import pytest

from tests.real.conftest import until
from tests.real.test_evennia import create_and_connect, open_game

pytestmark = pytest.mark.real

IAC, WILL, DO, SB, SE = 255, 251, 253, 250, 240
MSDP = 69
VAR, VAL = b"\x01", b"\x02"


def msdp_event(key: str):
    return lambda e: e["event"] == "gmcp" and e["payload"]["module"] == "MSDP" and key in (e["payload"]["data"] or {})


async def test_evennia_msdp_list_and_send_get_values_back(evennia_gateway, phoenix_js):
    relay = evennia_gateway.relay
    before = len(relay.connections)
    js = await open_game(evennia_gateway, phoenix_js)
    rec = relay.connections[before]
    assert bytes([IAC, WILL, MSDP]) in rec.to_gateway
    await until(lambda: bytes([IAC, DO, MSDP]) in rec.to_game, "DO MSDP from the gateway")
    await create_and_connect(js)

    # LIST COMMANDS: Evennia answers with the array of its input functions.
    mark = len(js.events)
    reply = await js.push("gmcp", {"module": "MSDP", "data": {"LIST": "COMMANDS"}})
    assert reply["status"] == "ok", reply
    await until(lambda: bytes([IAC, SB, MSDP]) + VAR + b"LIST" + VAL + b"COMMANDS" + bytes([IAC, SE])
                in rec.to_game, "MSDP LIST COMMANDS on the wire")
    listed = await js.event(msdp_event("commands"), "MSDP commands answering LIST COMMANDS", mark)
    commands = listed["payload"]["data"]["commands"]
    assert isinstance(commands, list) and {"list", "send", "report"} <= set(commands), commands

    # SEND NAME: a table of the variable asked for.
    mark = len(js.events)
    reply = await js.push("gmcp", {"module": "MSDP", "data": {"SEND": "NAME"}})
    assert reply["status"] == "ok", reply
    sent = await js.event(msdp_event("send"), "MSDP send answering SEND NAME", mark)
    assert sent["payload"]["data"] == {"send": {"NAME": "db_key"}}, sent
