"""Sound for the browser: IRE's ``Client.Media`` GMCP messages, and MSP triggers read into them (sans-I/O).

The browser plays what ``Client.Media.Play`` names and stops what
``Client.Media.Stop`` names (gateway/web/sound.js), whether the game sent
that GMCP itself or the gateway made it from MSP (here) or MXP ``<SOUND>``
/ ``<MUSIC>`` (SPEC 5). ``media_play`` and ``media_stop`` build the
``(module, data)`` of those messages, MSP's defaults filled in; a caller
wraps them in its event (``stream.Gmcp(*media_play(...))``).

An MSP trigger (https://www.zuggsoft.com/zmud/msp.htm) is a line that is
``!!SOUND(file args)`` or ``!!MUSIC(file args)`` alone (spaces after the
closing parenthesis allowed); ``args`` are ``V=`` volume (0-100, default
100), ``L=`` loops (-1 for ever, default 1), ``P=`` priority (0-100, default
50), ``T=`` type, which becomes the tag, and ``U=``/``C=``, which are
ignored: the sound's base URL is always the game's ``media_url``. A file
named ``Off`` stops that type of media. An argument that is not a number
where one is wanted keeps the default.
"""

from __future__ import annotations

import re
from typing import Any

PLAY, STOP = "Client.Media.Play", "Client.Media.Stop"
DEFAULT_VOLUME, DEFAULT_LOOPS, DEFAULT_PRIORITY = 100, 1, 50

_TRIGGER = r"!!(SOUND|MUSIC)\(([^)\n]*)\)[ \t]*"
#: A whole line (without its line end) that is one MSP trigger.
TRIGGER_LINE = re.compile(_TRIGGER)
#: The same at the start of a line, with its line end, in a run of complete lines.
TRIGGER_LINES = re.compile("^" + _TRIGGER + "\n", re.M)


def media_play(name: str, url: str, media_type: str, *, volume: int = DEFAULT_VOLUME,
               loops: int = DEFAULT_LOOPS, priority: int = DEFAULT_PRIORITY, tag: str | None = None,
               key: str | None = None) -> tuple[str, dict[str, Any]]:
    """``Client.Media.Play`` for ``name`` under ``url``; ``key`` (one sound per key) defaults to the name."""
    data: dict[str, Any] = {"name": name, "url": url, "type": media_type, "volume": volume,
                            "loops": loops, "priority": priority}
    if tag is not None:
        data["tag"] = tag
    data["key"] = name if key is None else key
    return PLAY, data


def media_stop(media_type: str) -> tuple[str, dict[str, Any]]:
    """``Client.Media.Stop`` of every sound (or all music) playing."""
    return STOP, {"type": media_type}


def _number(text: str, default: int, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        return default
    return max(low, min(high, value))


def msp_media(kind: str, inside: str, media_url: str) -> tuple[str, dict[str, Any]] | None:
    """``!!SOUND(inside)`` (``kind`` "SOUND") or ``!!MUSIC(inside)`` -> its Client.Media message,
    or None when it names no file."""
    words = inside.split()
    if not words:
        return None
    media_type = "music" if kind == "MUSIC" else "sound"
    name = words[0]
    if name.lower() == "off":
        return media_stop(media_type)
    args: dict[str, str] = {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if eq:
            args[key.upper()] = value
    volume = _number(args.get("V", ""), DEFAULT_VOLUME, 0, 100)
    loops = _number(args.get("L", ""), DEFAULT_LOOPS, -1, 1 << 16) or DEFAULT_LOOPS  # 0: the default
    priority = _number(args.get("P", ""), DEFAULT_PRIORITY, 0, 100)
    tag = args.get("T") or None
    return media_play(name, media_url, media_type, volume=volume, loops=loops, priority=priority, tag=tag)


def msp_trigger(line: str, media_url: str) -> tuple[str, dict[str, Any]] | None:
    """A line (no line end) that is an MSP trigger -> its Client.Media message; else None."""
    m = TRIGGER_LINE.fullmatch(line)
    return msp_media(m[1], m[2], media_url) if m else None
