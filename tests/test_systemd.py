"""systemd/mud-gateway.service has what SPEC 8 asks of a real deployment."""

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "mud-gateway.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(UNIT)
    return parser


def test_service_section():
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert "-HUP" in service["ExecReload"] and "$MAINPID" in service["ExecReload"]
    assert service["ExecStart"].endswith("mud-gateway --config /etc/mud-gateway/gateway.yaml")
    assert service["User"] and service["User"] != "root"


def test_sandboxing():
    service = unit()["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == "yes"
    assert service["PrivateTmp"] == "yes"
    families = set(service["RestrictAddressFamilies"].split())
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX"}  # AF_UNIX: the READY=1 notification
