"""Session log records (SPEC 8): the end reason in the disconnect's words, sub and bytes each way,
and with ``logging.format: json`` every value in a field of its own."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gateway.logs import JsonFormatter, log_event, logfmt
from tests.conftest import make_config, new_topic
from tests.test_auth import SECRET, open_socket, token


@pytest.fixture
def json_log():
    """The gateway's records as the JSON formatter writes them, one parsed object each."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gateway")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def records() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


async def played_and_closed_by_game(mud, gateway):
    """alice plays: the game writes 'hello', she types 'look', the game hangs up."""
    client, _ = await gateway(make_config(mud.port, extra=f"security: {{auth: {{secret: {SECRET}}}}}"))
    phx = await open_socket(client, token(sub="alice"))
    topic = new_topic()
    assert (await phx.join(topic))["status"] == "ok"
    conn = await mud.next_connection()
    conn.send(b"hello\r\n")
    await phx.event(topic, "echo")
    assert (await phx.request(topic, "recv", {"message": "look"}))["status"] == "ok"
    await conn.wait_for(b"look\r\n")
    conn.close()
    assert (await phx.event(topic, "disconnect"))["reason"] == "closed by game"


async def test_session_end_text_line_has_reason_words_sub_and_bytes(mud, gateway, caplog):
    caplog.set_level("INFO")
    await played_and_closed_by_game(mud, gateway)
    end = [r.getMessage() for r in caplog.records if r.getMessage().startswith("session end")]
    assert len(end) == 1
    line = end[0]
    for field in ("game=fake", "ip=127.0.0.1", "sub=alice", "bytes_to_game=6",
                  'reason="closed by game"'):
        assert field in line, line
    assert "closed_by_game" not in line
    start = [r.getMessage() for r in caplog.records if r.getMessage().startswith("session start")]
    assert start == ["session start game=fake ip=127.0.0.1 sub=alice"]


async def test_json_session_records_field_by_field(mud, gateway, json_log):
    await played_and_closed_by_game(mud, gateway)
    sessions = [r for r in json_log() if r["logger"] == "gateway.session"]
    start, end = sessions
    assert start["event"] == "session_start"
    assert (start["game"], start["ip"], start["sub"]) == ("fake", "127.0.0.1", "alice")
    assert end["event"] == "session_end"
    assert (end["game"], end["ip"], end["sub"], end["reason"]) == ("fake", "127.0.0.1", "alice",
                                                                   "closed by game")
    assert end["bytes_to_game"] == len(b"look\r\n")
    assert isinstance(end["bytes_to_browser"], int) and end["bytes_to_browser"] > len("hello")
    assert isinstance(end["duration_s"], float) and end["duration_s"] >= 0
    for record in (start, end):
        assert record["level"] == "info"
        assert record["time"].endswith("Z")
        assert record["message"].startswith(record["event"].replace("_", " "))


def test_values_cannot_forge_a_line():
    assert logfmt("alice") == "alice"
    assert logfmt(None) == "-"
    assert logfmt("a b") == '"a b"'
    assert logfmt('x\nsession end reason=forged') == '"x\\nsession end reason=forged"'
    assert logfmt("k=v") == '"k=v"'


def test_log_event_skips_work_below_level(caplog):
    caplog.set_level("WARNING")
    log_event(logging.getLogger("gateway.test"), logging.INFO, "x", "x", a=1)
    assert caplog.records == []
