"""Import rules of the platform layer and the simulator, checked on the real modules (AST and a fresh interpreter).

- ``agent.simulator`` imports nothing from the rest of ``agent`` (it stands in for a remote server).
- ``agent.platforms`` never imports the job machinery (``agent.jobs``, ``agent.steps``, ``agent.core``, ...) and
  does not load ``agent.config`` at runtime (the config builds its profile union from the mode registry).
- ``agent.schema`` imports nothing from ``agent``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support.configs import REPO

AGENT = REPO / "agent"
JOB_MACHINERY = (
    "agent.jobs",
    "agent.steps",
    "agent.core",
    "agent.runtime",
    "agent.daemon",
    "agent.recovery",
    "agent.httpapi",
    "agent.mqtt",
    "agent.cli",
    "agent.config",
)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (also under TYPE_CHECKING or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def agent_imports(path: Path) -> set[str]:
    return {m for m in imports_of(path) if m == "agent" or m.startswith("agent.")}


def test_simulator_imports_only_itself() -> None:
    files = sorted((AGENT / "simulator").glob("*.py"))
    assert files
    bad = {f.name: sorted(m for m in agent_imports(f) if not m.startswith("agent.simulator")) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_platforms_never_import_the_job_machinery_or_the_config() -> None:
    files = sorted((AGENT / "platforms").rglob("*.py"))
    assert len(files) > 10
    bad = {str(f.relative_to(AGENT)): sorted(m for m in agent_imports(f) if m.startswith(JOB_MACHINERY)) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_schema_imports_nothing_from_agent() -> None:
    assert agent_imports(AGENT / "schema.py") == set()


def test_runtime_imports_in_a_fresh_interpreter() -> None:
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
