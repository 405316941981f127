"""LeanTelnetWriter (gateway/telnet/writer.py): telnetlib3's writer with shared tables, same answers."""

from __future__ import annotations

from telnetlib3 import telopt
from telnetlib3.stream_writer import TelnetWriter

from gateway.telnet.writer import CALLBACK_TABLES, LeanTelnetWriter


class Transport:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name, default=None):
        return default


class Protocol:
    pass


def writers():
    return (TelnetWriter(transport=Transport(), protocol=Protocol(), client=True),
            LeanTelnetWriter(transport=Transport(), protocol=Protocol(), client=True))


def test_callback_tables_answer_as_telnetlib3s():
    plain, lean = writers()
    for table in CALLBACK_TABLES:
        want, got = getattr(plain, table), getattr(lean, table)
        assert isinstance(got, dict) and len(got) == 0  # nothing held per connection
        for key, func in want.items():
            assert key in got and got.get(key) is not None
            assert got[key].__func__ is func.__func__ and got[key].__self__ is lean
        assert b"\x00" not in got and got.get(b"\x00") is None  # no handler: as telnetlib3's
    assert lean.slctab is LeanTelnetWriter.slctab  # one table for every connection
    assert dict(lean.slctab).keys() == plain.slctab.keys()


def test_a_callback_set_on_one_connection_is_its_own():
    a, b = writers()[1], writers()[1]
    seen = []
    a.set_ext_send_callback(telopt.TTYPE, lambda: seen.append("a") or "A")
    assert a._ext_send_callback[telopt.TTYPE]() == "A" and seen == ["a"]
    assert b._ext_send_callback[telopt.TTYPE].__func__ is TelnetWriter.handle_send_ttype
    a._ext_send_callback.clear()  # as telnetlib3 does on close: nothing answers any more
    assert telopt.TTYPE not in a._ext_send_callback and telopt.NAWS not in a._ext_send_callback
    assert telopt.NAWS in b._ext_send_callback


def test_the_same_bytes_get_the_same_answers():
    """Commands fed byte by byte (as client.py does) answer exactly as telnetlib3's writer."""
    plain, lean = writers()
    stream = (telopt.IAC + telopt.DO + telopt.TTYPE + telopt.IAC + telopt.WILL + telopt.ECHO
              + telopt.IAC + telopt.DO + telopt.NAWS + telopt.IAC + telopt.AYT + telopt.IAC + telopt.DM
              + telopt.IAC + telopt.WILL + telopt.GMCP
              + telopt.IAC + telopt.SE)
    for w in (plain, lean):
        for b in stream:
            w.feed_byte(bytes((b,)))
    assert lean._transport.data == plain._transport.data != b""
    for attr in ("local_option", "remote_option", "pending_option"):
        assert dict(getattr(lean, attr)) == dict(getattr(plain, attr))
