"""Logs as journald files them: under systemd (JOURNAL_STREAM names stderr) every line carries its syslog priority
(`<6>` info, `<4>` warning), and every job transition is one line with the job id, a finished one at INFO with
its time from the press; `--log-level` chooses how much."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.configs import KEY_ENV, TEST_KEY

EXE = Path(sys.executable).parent / "edge-agent"


def _once(cfg: Path, tmp_path: Path, *args: str, journal: bool = True) -> str:
    err = tmp_path / "stderr.log"
    with err.open("wb") as f:
        st = os.fstat(f.fileno())
        env = {**os.environ, KEY_ENV: TEST_KEY, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}" if journal else "1:2"}
        subprocess.run(
            [str(EXE), "once", "-c", str(cfg), *args], stdout=subprocess.DEVNULL, stderr=f, env=env, timeout=120
        )
    return err.read_text()


def test_job_transitions_reach_the_journal_with_priorities(config_file, tmp_path: Path) -> None:
    text = _once(config_file(), tmp_path, "--log-level", "info")
    lines = text.splitlines()
    assert lines and all(re.match(r"^<[2-7]>", line) for line in lines), text
    job = re.search(r"<6>INFO agent\.jobs\.lifecycle: job ([0-9a-f-]{36}) captured", text)
    assert job, text
    jid = job.group(1)
    assert re.search(rf"<6>INFO agent\.jobs\.lifecycle: job {jid} done in \d+\.\d s, 1 output\(s\) ", text), text
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", text)  # journald stamps the time itself


def test_a_failed_job_is_a_warning_line_with_its_reason(config_file, tmp_path: Path) -> None:
    cfg = config_file(
        profiles=[{"name": "bad", "platform": "easy", "endpoint": "images.edits", "model": "m", "prompt": "FAIL"}]
    )
    text = _once(cfg, tmp_path, "--log-level", "info")
    assert re.search(
        r"^<4>WARNING agent\.jobs\.lifecycle: job \S+ failed: EasyAI failed: simulated failure", text, re.M
    )
    assert TEST_KEY not in text


def test_log_level_and_a_plain_terminal(config_file, tmp_path: Path) -> None:
    quiet = _once(config_file(), tmp_path, "--log-level", "warning")
    assert "<6>" not in quiet and " captured" not in quiet
    plain = _once(config_file(), tmp_path, "--log-level", "info", journal=False)  # stderr is not the journal
    assert " captured" in plain and "<6>" not in plain
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO", plain, re.M)
