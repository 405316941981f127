"""LeanTelnetWriter (gateway/telnet/telnetlib3_private.py): telnetlib3's writer with shared tables, same answers."""

from __future__ import annotations

import collections

from telnetlib3 import telopt
from telnetlib3.stream_writer import TelnetWriter

from gateway.telnet.telnetlib3_private import CALLBACK_TABLES, LeanTelnetWriter


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
    assert lean.slctab is LeanTelnetWriter.SHARED["slctab"]  # one table for every connection
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


def feed(w, data: bytes) -> None:
    for b in data:
        w.feed_byte(bytes((b,)))


def lean_pair():
    return writers()[1], writers()[1]


def test_a_refusal_is_recorded_on_its_own_connection_only():
    """The refusal sets start as one shared empty value: the first refusal makes the connection's own."""
    a, b = lean_pair()
    feed(a, telopt.IAC + telopt.DO + b"\x63" + telopt.IAC + telopt.WILL + b"\x63")
    assert a._transport.data == telopt.IAC + telopt.WONT + b"\x63" + telopt.IAC + telopt.DONT + b"\x63"
    assert a.rejected_do == {b"\x63"} and a.rejected_will == {b"\x63"}
    assert b.rejected_do == set() and b.rejected_will == set() and not b.directional_refusals
    assert a.rejected_do is a.rejected_do  # kept: the same set from now on
    b.rejected_do.add(b"\x64")
    assert a.rejected_do == {b"\x63"} and b.rejected_do == {b"\x64"}
    c = writers()[1]
    assert c.rejected_do == set() and not vars(c)  # nothing shared was changed, nothing in a dict


def test_a_kept_set_is_the_one_changed_even_through_an_older_read():
    w = writers()[1]
    first, second = w.rejected_will, w.rejected_will
    first.add(b"\x01")
    second.add(b"\x02")  # read before the first change: changes the connection's own set
    assert w.rejected_will == {b"\x01", b"\x02"}
    w.rejected_will |= {b"\x03"}
    w.rejected_will.discard(b"\x01")
    assert w.rejected_will == {b"\x02", b"\x03"} and writers()[1].rejected_will == set()


def test_waiters_and_batches_are_per_connection():
    a, b = lean_pair()
    a._waiters.append(("check", "fut"))
    a._environ_batches.extend([["TERM"]])
    assert a._waiters == [("check", "fut")] and a._environ_batches == [["TERM"]]
    assert b._waiters == [] and b._environ_batches == [] and b._waiters[:] == []
    b._waiters.clear()  # telnetlib3's close: nothing to clear, nothing made
    a._waiters.clear()
    assert a._waiters == []


def test_the_session_context_is_made_per_connection_when_read():
    a, b = lean_pair()
    a.ctx.gmcp_data["Char"] = 1
    assert a.ctx is a.ctx and b.ctx is not a.ctx and b.ctx.gmcp_data == {}


def test_option_tables_are_per_connection_and_wake_waiters():
    a, b = lean_pair()
    feed(a, telopt.IAC + telopt.WILL + telopt.GMCP)  # passive_do is empty for a plain lean writer
    feed(a, telopt.IAC + telopt.DO + telopt.NAWS)
    assert a.local_option.enabled(telopt.NAWS) and not b.local_option.enabled(telopt.NAWS)
    assert a.local_option is not b.local_option and not vars(a.local_option)
    assert a.local_option.name == "local_option" and b.remote_option.name == "remote_option"
    woken = []
    a._waiters.append((lambda: True, type("F", (), {"done": lambda s: False,
                                                    "set_result": lambda s, v: woken.append(v)})()))
    a.remote_option[telopt.SGA] = True  # a change checks the waiters, as telnetlib3's tables do
    assert woken == [True]


def test_answers_and_state_after_a_negotiation_leave_no_dict():
    """Every attribute telnetlib3 sets, before and during negotiation, has a slot."""
    plain, lean = writers()
    stream = (telopt.IAC + telopt.DO + telopt.TTYPE + telopt.IAC + telopt.WILL + telopt.ECHO
              + telopt.IAC + telopt.DO + b"\x63" + telopt.IAC + telopt.AYT + telopt.IAC + telopt.NOP)
    for w in (plain, lean):
        feed(w, stream)
    assert lean._transport.data == plain._transport.data
    assert (lean.byte_count, lean.cmd_received, lean.iac_received) == (plain.byte_count, plain.cmd_received,
                                                                       plain.iac_received)
    assert lean.rejected_do == plain.rejected_do == {b"\x63"}
    assert vars(lean) == {}


class Game:
    """A protocol setting its callbacks as telnetlib3's TelnetClient does in connection_made."""

    def __init__(self, name: str) -> None:
        self.name, self.calls = name, []

    def send_ttype(self) -> str:
        return self.name

    def on_will_gmcp(self, opt: bytes) -> None:
        self.calls.append(opt)

    def other(self, opt: bytes) -> None:
        self.calls.append(("other", opt))

    def connect(self) -> LeanTelnetWriter:
        w = LeanTelnetWriter(transport=Transport(), protocol=self, client=True)
        w.set_ext_send_callback(telopt.TTYPE, self.send_ttype)
        w.add_will_callback(telopt.GMCP, self.on_will_gmcp)
        w.passive_do.add(telopt.GMCP)
        w.share_protocol_callbacks()
        return w


def test_protocol_callbacks_are_looked_up_on_each_connections_protocol():
    pa, pb = Game("A"), Game("B")
    a, b = pa.connect(), pb.connect()
    for w, p in ((a, pa), (b, pb)):
        assert len(w._ext_send_callback) == 0 and dict.__len__(w.will_callbacks) == 0  # nothing held
        assert w._ext_send_callback[telopt.TTYPE]() == p.name and telopt.TTYPE in w._ext_send_callback
        assert w._ext_send_callback[telopt.NAWS].__func__ is TelnetWriter.handle_send_naws  # the writer's own
        assert w.will_callbacks.get(telopt.GMCP, ()) == [p.on_will_gmcp] and w.will_callbacks.get(b"\x00") is None
    feed(a, telopt.IAC + telopt.WILL + telopt.GMCP)
    assert pa.calls == [telopt.GMCP] and pb.calls == []
    a.handle_subnegotiation(collections.deque([telopt.TTYPE, b"\x01"]))  # as client.py hands it over
    assert a._transport.data.endswith(telopt.IAC + telopt.SB + telopt.TTYPE + b"\x00A" + telopt.IAC + telopt.SE)


def test_a_protocol_callback_changed_on_one_connection_is_its_own():
    pa, pb = Game("A"), Game("B")
    a, b = pa.connect(), pb.connect()
    a.set_ext_send_callback(telopt.TTYPE, lambda: "changed")
    a.add_will_callback(telopt.GMCP, pa.other)
    assert a._ext_send_callback[telopt.TTYPE]() == "changed" and b._ext_send_callback[telopt.TTYPE]() == "B"
    assert a.will_callbacks[telopt.GMCP] == [pa.on_will_gmcp, pa.other]
    assert b.will_callbacks.get(telopt.GMCP) == [pb.on_will_gmcp]
    a.remove_will_callback(telopt.GMCP, pa.on_will_gmcp)
    a.remove_will_callback(telopt.GMCP, pa.other)
    assert telopt.GMCP not in a.will_callbacks and telopt.GMCP in b.will_callbacks
    b.remove_will_callback(telopt.GMCP, pb.on_will_gmcp)  # from the shared names: its own, then gone
    assert telopt.GMCP not in b.will_callbacks and pa.connect().will_callbacks.get(telopt.GMCP)
    feed(b, telopt.IAC + telopt.WILL + telopt.GMCP)
    assert pb.calls == []
    b._ext_send_callback.clear()  # closed: nothing answers, the writer's own handlers neither
    assert telopt.TTYPE not in b._ext_send_callback and telopt.NAWS not in b._ext_send_callback


def test_a_connection_with_other_callbacks_keeps_its_own():
    """Only callbacks equal to those of the first connection of the protocol's class are shared."""
    Game("first").connect()
    p = Game("odd")
    w = LeanTelnetWriter(transport=Transport(), protocol=p, client=True)
    w.set_ext_send_callback(telopt.TTYPE, p.send_ttype)
    w.add_will_callback(telopt.GMCP, p.other)  # not what the first connection set
    w.passive_do.add(telopt.GMCP)
    w.share_protocol_callbacks()
    assert dict(w.will_callbacks) == {telopt.GMCP: [p.other]} and dict.__len__(w.will_callbacks) == 1
    assert len(w._ext_send_callback) == 0  # that table is the same as the first's: shared
    feed(w, telopt.IAC + telopt.WILL + telopt.GMCP)
    assert p.calls == [("other", telopt.GMCP)]


def test_a_connection_without_the_protocols_callbacks_keeps_the_writers_own():
    """A table left empty by a protocol of a class whose first connection set one is not shared."""
    Game("first").connect()
    p = Game("none set")
    w = LeanTelnetWriter(transport=Transport(), protocol=p, client=True)
    w.add_will_callback(telopt.GMCP, p.on_will_gmcp)
    w.share_protocol_callbacks()
    assert w._ext_send_callback[telopt.TTYPE].__func__ is TelnetWriter.handle_send_ttype
    assert w.will_callbacks.get(telopt.GMCP) == [p.on_will_gmcp]


def test_a_table_read_before_a_change_changes_the_connections_own():
    w, other = lean_pair()
    first, second = w._iac_callback, w._iac_callback  # no table of its own yet: two reads, two views
    first[telopt.AYT] = lambda cmd: "first"
    second[b"\x01"] = lambda cmd: "second"
    assert w._iac_callback[telopt.AYT](b"") == "first" and w._iac_callback[b"\x01"](b"") == "second"
    assert w._iac_callback is w._iac_callback  # kept
    assert other._iac_callback[telopt.AYT].__func__ is TelnetWriter.handle_ayt and b"\x01" not in other._iac_callback
    other._iac_callback.clear()  # closed: its own table, empty, nothing answers
    assert telopt.AYT not in other._iac_callback and telopt.AYT in writers()[1]._iac_callback
