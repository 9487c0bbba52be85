"""The import contract that keeps the layers apart (read with ``ast``, so imports inside functions count too):

* ``hardware/`` never imports ``agent``: devices know nothing of the application (gpiozero's way).
* ``agent/simulator/`` imports nothing from ``agent`` but itself: it stands in for the platforms, so it must not
  share their client code (a shared bug would pass both sides).
* ``agent/platforms/`` never imports the scheduler side (``agent.jobs``, ``agent.core``, ``agent.steps``,
  ``agent.runtime``, the inputs) nor ``agent.config``: a platform mode submits and polls; what happens to the job
  is not its business, and the config builds its profile union from the mode registry (no import cycle).
* ``agent/schema.py`` (the pydantic base the profile models use) imports nothing from ``agent``.
* ``agent/jobs/`` (the durable queue) never imports the steps or the scheduler, and ``agent/steps/`` never imports
  the scheduler: the queue is below the steps, the scheduler above both (no import cycle).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.configs import REPO

SCHEDULER_SIDE = (
    "agent.jobs",
    "agent.core",
    "agent.steps",
    "agent.runtime",
    "agent.daemon",
    "agent.recovery",
    "agent.httpapi",
    "agent.mqtt",
    "agent.cli",
    "agent.config",
)


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, base: Path = REPO) -> Iterator[tuple[int, str]]:
    """(line, absolute name) for every import in the file, wherever it is (top level, function, class,
    ``if TYPE_CHECKING:``). ``from a import b`` yields ``a.b`` (b may be a module: ``from agent import jobs`` is
    ``agent.jobs``); relative imports are resolved against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = module_name(path, base)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".") if node.level else []
            if node.level > 1:
                parts = parts[: len(parts) - (node.level - 1)]
            origin = ".".join([*parts, node.module] if node.module else parts)
            for alias in node.names:
                yield node.lineno, origin if alias.name == "*" else f"{origin}.{alias.name}".lstrip(".")


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(folder: str, forbidden: Callable[[str], bool], base: Path = REPO) -> list[str]:
    """`file:line: imports name` for each forbidden import under `base/folder`."""
    found: list[str] = []
    root = base / folder
    assert root.is_dir(), f"{root} is missing"
    for path in sorted(root.rglob("*.py")):
        for line, name in sorted(set(imports(path, base))):
            if forbidden(name):
                found.append(f"{path.relative_to(base)}:{line}: imports {name}")
    return found


def report(rule: str, found: list[str]) -> str:
    return f"{rule} ({len(found)} import(s)):\n  " + "\n  ".join(found)


def outside_simulator(name: str) -> bool:
    return within(name, "agent") and not within(name, "agent.simulator")


def scheduler_side(name: str) -> bool:
    return any(within(name, p) for p in SCHEDULER_SIDE)


def test_hardware_never_imports_agent() -> None:
    found = violations("hardware", lambda name: within(name, "agent"))
    assert not found, report("hardware/ must not import agent: pass plain values and callbacks instead", found)


def test_simulator_imports_nothing_from_the_rest_of_agent() -> None:
    found = violations("agent/simulator", outside_simulator)
    assert not found, report("agent/simulator/ may import only agent.simulator.* from agent", found)


def test_platforms_never_import_the_scheduler_side() -> None:
    found = violations("agent/platforms", scheduler_side)
    assert not found, report(f"agent/platforms/ must not import {', '.join(SCHEDULER_SIDE)}", found)


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    # the contract is only as good as its parser: aliased, nested, guarded and relative imports must not slip by
    hw = tmp_path / "hardware" / "sub"
    hw.mkdir(parents=True)
    (hw / "probe.py").write_text(
        "import agent.core as c\n"
        "from agent import jobs\n"
        "def f():\n"
        "    from agent.commands import Command\n"
        "if TYPE_CHECKING:\n"
        "    from agent.config import Config\n"
        "import agentur, hardware.gpio\n"
    )
    found = violations("hardware", lambda name: within(name, "agent"), base=tmp_path)
    assert [f.split(": imports ")[0] for f in found] == [f"hardware/sub/probe.py:{n}" for n in (1, 2, 4, 6)], found

    modes = tmp_path / "agent" / "platforms" / "modes"
    modes.mkdir(parents=True)
    (modes / "probe.py").write_text("from ...jobs import store\nfrom ..session import PlatformHTTP\nfrom . import x\n")
    found = violations("agent/platforms", scheduler_side, base=tmp_path)
    assert found == ["agent/platforms/modes/probe.py:1: imports agent.jobs.store"], found

    sim = tmp_path / "agent" / "simulator"
    sim.mkdir(parents=True)
    (sim / "__init__.py").write_text("from .server import Simulator\nfrom agent import __version__\n")
    found = violations("agent/simulator", outside_simulator, base=tmp_path)
    assert found == ["agent/simulator/__init__.py:2: imports agent.__version__"], found


def test_the_queue_is_below_the_steps_and_the_scheduler_above_both() -> None:
    found = violations("agent/jobs", lambda name: within(name, "agent.steps") or within(name, "agent.scheduler"))
    assert not found, report("agent/jobs/ must not import agent.steps or agent.scheduler", found)
    found = violations("agent/steps", lambda name: within(name, "agent.scheduler") or within(name, "agent.core"))
    assert not found, report("agent/steps/ must not import agent.scheduler or agent.core", found)


def test_schema_imports_nothing_from_agent() -> None:
    found = [
        f"agent/schema.py:{line}: imports {name}"
        for line, name in imports(REPO / "agent" / "schema.py")
        if within(name, "agent")
    ]
    assert not found, report("agent/schema.py must not import agent", found)


def test_platforms_load_without_the_config_in_a_fresh_interpreter() -> None:
    code = (
        "import sys\n"
        "import agent.simulator\n"
        "sim = sorted(m for m in sys.modules if m.startswith('agent.') and not m.startswith('agent.simulator'))\n"
        "import agent.platforms, agent.platforms.modes, agent.platforms.easyai, agent.platforms.haiyi\n"
        "print(sim, 'agent.config' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[] False"
