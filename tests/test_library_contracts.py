"""Canaries for the library private names the gateway relies on (issue 19.4).

Each private name used by ``gateway/aiohttp_private.py`` or
``gateway/telnet/telnetlib3_private.py`` (the only modules that use any) is checked
here, so that a new aiohttp or telnetlib3 that renamed or dropped one fails with
a message naming it and the module to fix, rather than somewhere deep in a
session. docs/architecture.md ("Library private names") says why each is worth it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
from pathlib import Path

import pytest
from aiohttp import web, web_protocol, web_ws
from packaging.requirements import Requirement
from telnetlib3 import client as tl_client
from telnetlib3 import client_base as tl_client_base
from telnetlib3.stream_reader import TelnetReader
from telnetlib3.stream_writer import TelnetWriter

from gateway import aiohttp_private
from gateway.telnet import telnetlib3_private as shim

ROOT = Path(__file__).resolve().parent.parent
AIOHTTP = importlib.metadata.version("aiohttp")
TELNETLIB3 = importlib.metadata.version("telnetlib3")


def require(missing: "list[str] | set[str]", library: str, version: str, module: str, why: str) -> None:
    assert not missing, (f"{library} {version} no longer has {sorted(missing)}: {module} relies on "
                         f"{'it' if len(missing) == 1 else 'them'} ({why}); see docs/architecture.md, "
                         "\"Library private names\", and pin the version that has them or adapt the module")


def require_in_source(func, needle: str, what: str, module: str, why: str) -> None:
    """``func``'s source (aiohttp's) still does what the module relies on: holds ``needle``."""
    require(set() if needle in inspect.getsource(func) else {what}, "aiohttp", AIOHTTP, module, why)


def slots_of(cls: type) -> set[str]:
    return {name for k in cls.__mro__ for name in getattr(k, "__slots__", ())}


# -- the pins ------------------------------------------------------------------------------

def test_installed_libraries_are_the_pinned_ones():
    """pyproject.toml pins aiohttp and telnetlib3 to the versions these canaries passed on."""
    text = (ROOT / "pyproject.toml").read_text()
    deps = ast.literal_eval(re.search(r"^dependencies = (\[.*?\n\])", text, re.S | re.M).group(1))
    pins = {Requirement(d).name: Requirement(d) for d in deps}
    for name in ("aiohttp", "telnetlib3"):
        spec = pins[name].specifier
        assert any(s.operator in ("~=", "==") for s in spec), f"{name} is not pinned: {spec}"
        installed = importlib.metadata.version(name)
        assert spec.contains(installed), f"{name} {installed} is installed, pyproject.toml pins {spec}"


# -- aiohttp ---------------------------------------------------------------------------------

def test_aiohttp_request_handler_keeps_bytes_past_the_request_in_message_tail():
    require({"_message_tail"} - slots_of(web_protocol.RequestHandler), "aiohttp", AIOHTTP,
            "gateway/aiohttp_private.py unread_after_request",
            "the browser frames read with the upgrade request")
    require_in_source(web_protocol.RequestHandler.data_received, "_message_tail",
                      "RequestHandler.data_received -> _message_tail",
                      "gateway/aiohttp_private.py unread_after_request", "where the bytes past a request are kept")


def test_aiohttp_request_handler_can_forget_its_connection():
    missing = {"transport"} - slots_of(web_protocol.RequestHandler)
    if not callable(getattr(web_protocol.RequestHandler, "connection_lost", None)):
        missing.add("RequestHandler.connection_lost")
    require(missing, "aiohttp", AIOHTTP, "gateway/aiohttp_private.py forget_connection",
            "the handler lets the connection go without closing it")
    # It closes the transport it still holds: None, so the socket's stays open.
    require_in_source(web_protocol.RequestHandler.force_close, "self.transport is not None",
                      "force_close: transport None check", "gateway/aiohttp_private.py forget_connection",
                      "a handler whose transport is None closes nothing")


def test_aiohttp_ends_a_websocket_response_with_write_eof():
    method = web_ws.WebSocketResponse.__dict__.get("write_eof")
    require(set() if method is not None and inspect.iscoroutinefunction(method) else {"WebSocketResponse.write_eof"},
            "aiohttp", AIOHTTP, "gateway/aiohttp_private.py HandshakeOnly",
            "no close frame of aiohttp's after the takeover")
    assert aiohttp_private.HandshakeOnly.write_eof is not method


async def test_aiohttp_site_holds_its_listening_server():
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        server = getattr(site, "_server", None)
        require(set() if server is not None and server.sockets else {"BaseSite._server"}, "aiohttp",
                AIOHTTP, "gateway/aiohttp_private.py listening_server",
                "the listening socket an upgrade in place hands over")
        assert aiohttp_private.listening_server(site).sockets
    finally:
        await runner.cleanup()


async def test_aiohttp_client_websocket_writes_a_frame_at_once():
    from aiohttp import client_ws
    from aiohttp._websocket import writer as ws_writer
    missing = set()
    if "self._writer = writer" not in inspect.getsource(client_ws.ClientWebSocketResponse.__init__):
        missing.add("ClientWebSocketResponse._writer")
    if not callable(getattr(ws_writer.WebSocketWriter, "_write_websocket_frame", None)):
        missing.add("WebSocketWriter._write_websocket_frame")
    require(missing, "aiohttp", AIOHTTP, "gateway/aiohttp_private.py write_frame_now",
            "the benchmark clients' frame written without a coroutine")


# -- telnetlib3 --------------------------------------------------------------------------------

def test_telnetlib3_writer_attributes_the_shim_replaces():
    writer = TelnetWriter(transport=None, protocol=None, client=True)
    attrs = set(vars(writer))
    needed = {*shim.CALLBACK_TABLES, "_slc_callback", "_slc_buffer", "_sb_buffer", "_linemode", "slctab",
              "_waiters", "_environ_batches", "rejected_will", "rejected_do", "directional_refusals",
              "passive_do", "ctx", "pending_option", "local_option", "remote_option", "_protocol"}
    require(needed - attrs, "telnetlib3", TELNETLIB3, "gateway/telnet/telnetlib3_private.py LeanTelnetWriter",
            "attributes TelnetWriter sets, replaced by shared ones")
    require({n for n in (*shim.LATER_ATTRIBUTES, "default_slc_tab", "_check_waiters")
             if not hasattr(TelnetWriter, n)}, "telnetlib3", TELNETLIB3,
            "gateway/telnet/telnetlib3_private.py LeanTelnetWriter", "class defaults and the option tables' handler")
    for table in shim.CALLBACK_TABLES:  # default handlers: the writer's own methods, looked up by name
        assert all(getattr(f, "__self__", None) is writer for f in getattr(writer, table).values()), table
    # Every attribute it sets has a slot: none goes in a dict per connection.
    require(attrs - slots_of(shim.LeanTelnetWriter), "telnetlib3", TELNETLIB3,
            "gateway/telnet/telnetlib3_private.py LeanTelnetWriter.__slots__", "new writer attributes need slots")


def test_telnetlib3_session_context_module():
    try:
        from telnetlib3._session_context import TelnetSessionContext  # noqa: F401
    except ImportError:
        require({"telnetlib3._session_context.TelnetSessionContext"}, "telnetlib3", TELNETLIB3,
                "gateway/telnet/telnetlib3_private.py", "the class of a writer's ctx, made when first read")


def test_telnetlib3_reader_attributes_have_slots():
    reader = TelnetReader()
    require(set(vars(reader)) - slots_of(shim.LeanTelnetReader), "telnetlib3", TELNETLIB3,
            "gateway/telnet/telnetlib3_private.py LeanTelnetReader.__slots__", "reader attributes in slots")


async def test_telnetlib3_client_hooks_and_attributes():
    require({n for n in ("_writer_factory", "_reader_factory", "_check_negotiation_timer")
             if not hasattr(tl_client_base.BaseClient, n)}, "telnetlib3", TELNETLIB3,
            "gateway/telnet/telnetlib3_private.py LeanTelnetClient", "its factory hooks and negotiation timer")
    plain = tl_client.TelnetClient(encoding=False)
    attrs = set(vars(plain))
    require({"_rx_queue", "_drain_waiters", "_tasks", "_send_environ", "_zmp_supported_commands",
             "_waiter_connected", "_gmcp_hello_sent"} - attrs, "telnetlib3", TELNETLIB3,
            "gateway/telnet/telnetlib3_private.py LeanTelnetClient", "attributes it shares or reads")
    require({n for n in ("_transport", "_closing", "_check_later", "_when_connected", "_last_received")
             if not hasattr(plain, n)}, "telnetlib3", TELNETLIB3,
            "gateway/telnet/telnetlib3_private.py LeanTelnetClient", "attributes it reads (class defaults)")
    require(attrs - slots_of(shim.LeanTelnetClient), "telnetlib3", TELNETLIB3,
            "gateway/telnet/telnetlib3_private.py LeanTelnetClient.__slots__", "client attributes in slots")


# -- the rule itself ---------------------------------------------------------------------------

PRIVATE = {
    "aiohttp": ("gateway/aiohttp_private.py",
                re.compile(r"_message_tail|\._server\b|connection_lost\(None\)|\._writer\b|_write_websocket_frame")),
    "telnetlib3": ("gateway/telnet/telnetlib3_private.py",
                   re.compile(r"_writer_factory|_reader_factory|_check_negotiation_timer|_gmcp_hello_sent"
                              r"|_session_context|_slc_callback|_sb_buffer|_environ_batches|_send_environ"
                              r"|_zmp_supported_commands|_rx_queue|_drain_waiters|_waiter_connected"
                              r"|\._protocol\b|\._closing\b|\._transport\b|_iac_callback"
                              r"|_ext_(send_|offer_)?callback|_check_later|_tasks\b")),
}


@pytest.mark.parametrize("library", sorted(PRIVATE))
def test_only_the_private_module_names_a_library_private(library):
    """In the modules that use the library (import it, or subclass its classes through the
    private module), no private name of it outside that one module."""
    home, pattern = PRIVATE[library]
    uses = re.compile(rf"^\s*(from|import) ({library}\b|\S*{Path(home).stem}\b)", re.M)
    files = sorted((ROOT / "gateway").rglob("*.py")) + sorted((ROOT / "bench").glob("*.py"))
    offenders = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in files
                 if str(p.relative_to(ROOT)) != home and uses.search(p.read_text())
                 for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, f"{library}'s private names outside {home}: {offenders}"
