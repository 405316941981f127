"""systemd/mud-gateway.service has what SPEC 8 asks of a real deployment, and systemd-analyze
verify finds nothing wrong with it."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


DEPLOYED = "/opt/mud-gateway/bin/mud-gateway"


def analyze_verify(text: str, tmp_path: Path) -> str:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (./dev test installs Debian's systemd package, as root)")
    path = tmp_path / "mud-gateway.service"
    path.write_text(text)
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}".strip()


def test_systemd_analyze_verify_finds_nothing(tmp_path):
    """``systemd-analyze verify`` checks that each command is executable, and the unit's
    program exists only where it is deployed (/opt/mud-gateway, docs/operations.md). So the
    copy checked here runs this checkout's console script, the same program; nothing else
    of the unit is changed."""
    text = UNIT.read_text()
    assert text.count(DEPLOYED) >= 2  # ExecStartPre, ExecStart
    here = Path(sys.executable).parent / "mud-gateway"
    assert here.is_file(), here
    assert analyze_verify(text.replace(DEPLOYED, str(here)), tmp_path) == "exit 0"


def test_systemd_analyze_verify_would_complain(tmp_path):
    """The check above can fail: verify prints what it dislikes (and still exits 0)."""
    here = str(Path(sys.executable).parent / "mud-gateway")
    text = UNIT.read_text().replace(DEPLOYED, here).replace("Type=notify", "Type=notify\nTyp=simple")
    assert "Unknown key 'Typ'" in analyze_verify(text, tmp_path)
    if not Path(DEPLOYED).exists():
        assert "is not executable" in analyze_verify(UNIT.read_text(), tmp_path)


def test_runtime_directory_for_the_upgrade_status():
    service = unit()["Service"]
    assert service["RuntimeDirectory"] == "mud-gateway"  # $RUNTIME_DIRECTORY: `mud-gateway upgrade` finds the status
