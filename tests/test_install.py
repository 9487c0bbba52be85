"""scripts/install.sh into a throw-away root (`--root DIR`): what a technician's Pi gets, as far as this machine
allows (no apt, no service start): the user and its groups, the venv with a working `edge-agent`, the config
and key files with their modes, the enabled unit that `systemd-analyze verify` accepts, a second run that changes
nothing a technician edited, and an uninstall that keeps the queue and results unless told."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "scripts" / "install.sh"
IN_CI = os.environ.get("CI") == "true"


def _need_root() -> None:
    if os.geteuid() != 0:  # install.sh needs root (chown, useradd --prefix); CI runs as root
        if IN_CI:
            pytest.fail("install.sh is tested as root (chown, useradd --prefix)")
        pytest.skip("install.sh needs root")


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTALL), "--root", str(root), *args], capture_output=True, text=True, timeout=600, cwd="/"
    )


def _ids(root: Path, file: str, name: str) -> list[str] | None:
    for line in (root / "etc" / file).read_text().splitlines():
        parts = line.split(":")
        if parts[0] == name:
            return parts
    return None


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A target root with the host's account files and systemd's own units (what verify needs)."""
    _need_root()
    r = tmp_path_factory.mktemp("fakeroot")
    (r / "etc").mkdir()
    for f in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        if Path("/etc", f).exists():
            shutil.copy2(Path("/etc", f), r / "etc" / f)
    (r / "bin").mkdir()
    shutil.copy2("/bin/kill", r / "bin" / "kill")  # ExecReload's command must exist for verify
    if Path("/usr/lib/systemd/system").is_dir():
        shutil.copytree("/usr/lib/systemd/system", r / "usr/lib/systemd/system", symlinks=True)
    host_accounts = Path("/etc/passwd").read_text(), Path("/etc/group").read_text()
    p = _install(r, "--example", "photobooth")
    assert p.returncode == 0, p.stdout + p.stderr
    assert (Path("/etc/passwd").read_text(), Path("/etc/group").read_text()) == host_accounts  # only the root
    return r


def test_install_makes_user_program_config_and_unit(root: Path) -> None:
    user = _ids(root, "passwd", "edge-agent")
    assert user is not None and user[5] == "/var/lib/edge-agent" and user[6].endswith("nologin")
    for g in ("gpio", "video", "lp"):
        grp = _ids(root, "group", g)
        assert grp is not None and "edge-agent" in grp[3].split(","), g

    exe = root / "opt/edge-agent/.venv/bin/edge-agent"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip(), out.stderr
    cfg = root / "etc/edge-agent/config.toml"
    assert cfg.read_text() == (REPO / "config/photobooth.toml").read_text()
    st = cfg.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and str(st.st_gid) == user[3]
    env = (root / "etc/edge-agent/environment").stat()
    assert stat.S_IMODE(env.st_mode) == 0o600 and env.st_uid == 0
    state = (root / "var/lib/edge-agent").stat()
    assert str(state.st_uid) == user[2] and stat.S_IMODE(state.st_mode) == 0o750

    unit = root / "etc/systemd/system/edge-agent.service"
    assert unit.read_text() == (REPO / "systemd/edge-agent.service").read_text()
    link = root / "etc/systemd/system/multi-user.target.wants/edge-agent.service"
    assert link.is_symlink() and os.readlink(link) == "/etc/systemd/system/edge-agent.service"


def test_systemd_analyze_verify_accepts_the_unit(root: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        if IN_CI:
            pytest.fail("systemd-analyze is missing (apt install systemd)")
        pytest.skip("no systemd-analyze here")
    p = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "edge-agent.service"], capture_output=True, text=True
    )
    assert p.returncode == 0 and "edge-agent.service" not in p.stderr, p.stderr


def test_second_run_keeps_what_the_technician_edited_and_locks_key_files(root: Path) -> None:
    cfg = root / "etc/edge-agent/config.toml"
    edited = (
        cfg.read_text()
        .replace('api_key_env = "EASYAI_API_KEY"', 'api_key_file = "/etc/edge-agent/easyai.key"')
        .replace('id = "booth-01"', 'id = "booth-07"')
    )
    cfg.write_text(edited)
    key = root / "etc/edge-agent/easyai.key"
    key.write_text("sk-technician-typed-this\n")
    key.chmod(0o644)  # what an editor leaves behind

    p = _install(root, "--example", "photobooth")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "up to date" in p.stdout and "kept the existing /etc/edge-agent/config.toml" in p.stdout
    assert cfg.read_text() == edited
    user = _ids(root, "passwd", "edge-agent")
    assert user is not None
    st = key.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and str(st.st_uid) == user[2]
    assert "sk-technician" not in p.stdout + p.stderr


def test_unknown_example_is_a_clear_usage_error(root: Path) -> None:
    p = _install(root, "--example", "nope")
    assert p.returncode == 2 and "no example config named 'nope'" in p.stderr


def test_uninstall_keeps_queue_and_results_unless_purged(root: Path, tmp_path: Path) -> None:
    work = tmp_path / "r"
    shutil.copytree(root, work, symlinks=True)
    results = work / "var/lib/edge-agent/results/2026-11-30/abc"
    results.mkdir(parents=True)
    (results / "result-1.png").write_bytes(b"png")
    (work / "var/lib/edge-agent/jobs.db").write_bytes(b"db")

    p = _install(work, "--uninstall")
    assert p.returncode == 0, p.stderr
    assert not (work / "opt/edge-agent").exists()
    assert not (work / "etc/systemd/system/edge-agent.service").exists()
    assert not (work / "etc/systemd/system/multi-user.target.wants/edge-agent.service").exists()
    assert (results / "result-1.png").read_bytes() == b"png" and (work / "var/lib/edge-agent/jobs.db").exists()
    assert (work / "etc/edge-agent/config.toml").exists() and "--purge removes them" in p.stdout

    p = _install(work, "--uninstall", "--purge")
    assert p.returncode == 0, p.stderr
    assert not (work / "var/lib/edge-agent").exists() and not (work / "etc/edge-agent").exists()
    assert _ids(work, "passwd", "edge-agent") is None
