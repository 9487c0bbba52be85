"""`edge-agent config reference` documents every key from the config models; docs/CONFIG.md is its output, so a key
added without regenerating the file fails here (regenerate: `edge-agent config reference -o docs/CONFIG.md`)."""

from __future__ import annotations

from pathlib import Path

from agent.config.model import Config
from agent.config.reference import reference
from tests.support.proc import run_cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "CONFIG.md"


def test_checked_in_reference_matches_the_models() -> None:
    assert DOC.read_text(encoding="utf-8") == reference(), (
        "docs/CONFIG.md is out of date: run `edge-agent config reference -o docs/CONFIG.md`"
    )


def test_every_section_and_key_is_documented_with_a_description() -> None:
    text = reference()
    for section, field in Config.model_fields.items():
        assert f"## {section}\n" in text
        assert field.description
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            assert len(cells) == 4 and cells[3], f"a key without a description: {line}"


def test_cli_prints_and_writes_it(tmp_path: Path) -> None:
    r = run_cli("config", "reference")
    assert r.returncode == 0 and r.stdout == reference()
    out = tmp_path / "CONFIG.md"
    assert run_cli("config", "reference", "-o", str(out)).returncode == 0 and out.read_text() == reference()
    bad = run_cli("config", "reference", "-o", str(tmp_path / "no" / "such" / "CONFIG.md"))
    assert bad.returncode == 2 and "cannot write" in bad.stderr and "Traceback" not in bad.stderr
