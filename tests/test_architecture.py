"""The pipeline in the folders (docs/architecture.md): imports go one way, never in a circle,
and the pure cores import without aiohttp or asyncio."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"

#: The sans-I/O cores: bytes or messages in, events out (docs/architecture.md).
PURE = ("gateway.transport.frames", "gateway.transport.connection", "gateway.transport.serializer", "gateway.channel",
        "gateway.replay", "gateway.handoff", "gateway.gametext", "gateway.jsonstring",
        "gateway.nesting", "gateway.ratelimit", "gateway.telnet.stream", "gateway.telnet.input",
        "gateway.telnet.mxp", "gateway.telnet.msdp", "gateway.telnet.media",
        "gateway.telnet.subnegotiation", "gateway.telnet.proxy",
        "gateway.mudstandards.framing", "gateway.mudstandards.relay")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each gateway module -> the gateway modules it imports (anywhere in it, at any depth)."""
    names = {module_name(p) for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            for c in candidates:
                if c in names and c != name:
                    deps.add(c)
        graph[name] = deps - {"gateway"}  # the package itself: __version__ only
    return graph


def test_the_telnet_side_imports_nothing_above_it():
    above = ("gateway.transport", "gateway.channel", "gateway.session", "gateway.routes",
             "gateway.admin", "gateway.upgrade", "gateway.cli", "gateway.webclient")
    for name, deps in imports().items():
        if name.startswith("gateway.telnet"):
            wrong = sorted(d for d in deps if d.startswith(above))
            assert not wrong, f"{name} imports {wrong}: the telnet side is below them"


def test_the_transport_imports_no_telnet_module():
    for name, deps in imports().items():
        if name.startswith("gateway.transport"):
            wrong = sorted(d for d in deps if d.startswith("gateway.telnet"))
            assert not wrong, f"{name} imports {wrong}: what both need belongs below both"


def test_no_module_imports_in_a_circle():
    graph = imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name):] + [name]
            raise AssertionError("modules import each other: " + " -> ".join(cycle))
        if name in done:
            return
        for dep in sorted(graph.get(name, ())):
            visit(dep, path + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_pure_cores_import_without_aiohttp_or_asyncio():
    # A fresh interpreter in which importing aiohttp or asyncio fails.
    code = ("import sys\n"
            "sys.modules['aiohttp'] = None\nsys.modules['asyncio'] = None\n"
            f"for name in {PURE!r}:\n"
            "    __import__(name)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_class_repeats_a_slot_of_its_bases():
    """A subclass's slot with a base's slot name hides the base's: two objects under one name
    (the reply hold's first timer name was the /ws socket's queue of held input)."""
    import importlib
    import inspect

    def slots(cls: type) -> set[str]:
        names = vars(cls).get("__slots__", ())
        return {names} if isinstance(names, str) else set(names)

    repeated = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__main__.py":
            continue  # (runs the gateway)
        module = importlib.import_module(module_name(path))
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != module.__name__ or "__slots__" not in vars(cls):
                continue
            for base in cls.__mro__[1:]:
                for name in slots(cls) & slots(base):
                    repeated.append(f"{cls.__module__}.{cls.__qualname__}.{name} (also {base.__qualname__})")
    assert not repeated, repeated
