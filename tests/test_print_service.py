"""The print service against a real CUPS queue: auto_print prints once per job, also across restarts (and catches up
a job that finished just before a crash), and a slow `lp` never holds up the core's control thread."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.commands import Command
from tests.support.cups import PdfQueue
from tests.support.printing import VIVID, booth, done_job, printer_config, two_tone, wait_print
from tests.support.proc import wait_until
from tests.support.sim import running_sim


@pytest.fixture(scope="module")
def queue():
    with PdfQueue("ea-service") as q:
        yield q


def test_auto_print_prints_each_job_once_also_across_restarts(config_file, queue: PdfQueue) -> None:
    cfg = config_file(profiles=[VIVID], printer=printer_config(queue.name, auto_print=True))
    with booth(cfg) as rt:
        job = done_job(rt.agent, two_tone((600, 800)))
        [rec] = wait_until(lambda: rt.agent.printer.store.for_job(job.id), what="the auto print recorded")
        assert rec.auto and rec.source == "auto"
        wait_print(rt.agent, rec.id)
    for _ in range(2):  # restarted twice: the done job is not printed again
        with booth(cfg) as rt:
            wait_until(lambda: not rt.agent.printer._first_round, what="the service's first round")
            assert [r.id for r in rt.agent.printer.store.for_job(job.id)] == [rec.id]


def test_a_job_done_just_before_a_crash_gets_its_one_auto_print(config_file, queue: PdfQueue) -> None:
    # the job finished while auto_print was not acted on (here: off; in life: a crash between done and present)
    off = config_file(profiles=[VIVID], printer=printer_config(queue.name))
    with booth(off) as rt:
        job = done_job(rt.agent, two_tone((600, 800)))
    on = config_file(profiles=[VIVID], printer=printer_config(queue.name, auto_print=True))
    for _ in range(2):
        with booth(on) as rt:
            [rec] = wait_until(lambda: rt.agent.printer.store.for_job(job.id), what="the catch-up print")
            wait_print(rt.agent, rec.id)


@pytest.fixture
def slow_lp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real `lp` behind a wrapper that first sleeps (a scheduler busy with a large file)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    started = tmp_path / "lp-started"
    wrapper = bin_dir / "lp"
    wrapper.write_text(f'#!/bin/sh\ntouch "{started}"\nsleep 6\nexec /usr/bin/lp "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return started


def test_a_print_while_lp_is_slow_does_not_delay_a_cancel(config_file, tmp_path: Path, queue, slow_lp: Path) -> None:
    with running_sim(seed=5, latency=4.0) as slow_sim:  # job B stays on the platform while we cancel it
        cfg = config_file(profiles=[VIVID], printer=printer_config(queue.name))
        text = cfg.read_text().replace(config_sim_url(cfg), slow_sim.url)
        cfg.write_text(text)
        with booth(cfg) as rt:
            agent = rt.agent
            job_a = done_job(agent, two_tone((600, 800)))
            t0 = time.monotonic()
            answer = agent.request(Command("print", "button", job_id=job_a.id)).result(timeout=5)
            assert time.monotonic() - t0 < 1.0 and answer["state"] == "queued"
            wait_until(slow_lp.exists, what="the slow lp to start")
            job_b = agent.capture_file(two_tone((600, 800)), profile="vivid")["job_id"]
            t0 = time.monotonic()
            cancelled = agent.request(Command("cancel", "button", job_id=job_b)).result(timeout=5)
            took = time.monotonic() - t0
            assert cancelled["state"] == "cancelled"
            assert took < 1.0, f"the cancel waited {took:.1f} s behind `lp`"
            assert agent.printer.store.get(answer["print_id"]).state.value == "sent"  # lp still running
            wait_print(agent, answer["print_id"], timeout=40)


def config_sim_url(cfg: Path) -> str:
    import tomllib

    return tomllib.loads(cfg.read_text())["platforms"]["easy"]["base_url"]


def test_a_print_in_cups_at_a_restart_is_looked_up_again_not_sent_twice(
    config_file, tmp_path: Path, queue: PdfQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a real `lp`, after which the queue stops (as if the paper ran out): the print sits in CUPS with its id
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lp").write_text(f'#!/bin/sh\n/usr/bin/lp "$@" && cupsdisable -r media-empty {queue.name}\n')
    (bin_dir / "lp").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cfg = config_file(profiles=[VIVID], printer=printer_config(queue.name))
    try:
        with booth(cfg) as rt:
            job = done_job(rt.agent, two_tone((600, 800)))
            pid = rt.agent.request(Command("print", "kiosk", job_id=job.id)).result(timeout=5)["print_id"]
            rec = wait_print(rt.agent, pid, ("held",))
            assert rec.cups_job_id and rec.detail  # the paused queue's reason, as CUPS tells it
        monkeypatch.setenv("PATH", os.environ["PATH"].split(os.pathsep, 1)[1])  # the plain `lp` again
        with booth(cfg) as rt:
            wait_until(lambda: not rt.agent.printer._first_round, what="the service's first round")
            again = rt.agent.printer.store.get(pid)
            assert again.state.value == "held" and again.cups_job_id == rec.cups_job_id
            queue.enable()
            done = wait_print(rt.agent, pid)
            assert done.cups_job_id == rec.cups_job_id  # the same CUPS job came out: nothing sent again
            assert [r.id for r in rt.agent.printer.store.for_job(job.id)] == [pid]
            queue.output(rec.cups_job_id)
    finally:
        queue.enable()


def test_lp_that_stalls_after_cups_took_the_job_prints_once(
    config_file, tmp_path: Path, queue: PdfQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lp` hands the job over, then does not return in time: the print may be out, so it is never sent again."""
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lp").write_text('#!/bin/sh\n/usr/bin/lp "$@"\nsleep 4\n')
    (bin_dir / "lp").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cfg = config_file(profiles=[VIVID], printer=printer_config(queue.name, lp_timeout_s=1, poll_interval_s=0.5))
    before = subprocess.run(["lpstat", "-W", "all", "-o", queue.name], capture_output=True, text=True).stdout
    with booth(cfg) as rt:
        job = done_job(rt.agent, two_tone((600, 800)))
        pid = rt.agent.request(Command("print", "kiosk", job_id=job.id)).result(timeout=5)["print_id"]
        rec = wait_print(rt.agent, pid, ("failed",), timeout=20)
        assert "not sent again" in (rec.detail or "")
        time.sleep(3)  # several service rounds: none may send it again
    after = subprocess.run(["lpstat", "-W", "all", "-o", queue.name], capture_output=True, text=True).stdout
    assert len(after.splitlines()) - len(before.splitlines()) == 1, after


def test_auto_resume_re_enables_a_stopped_queue_within_its_bound(config_file, queue: PdfQueue) -> None:
    """A queue CUPS stopped (a lost USB link) is enabled again after auto_resume_delay_s, and the held print goes
    out; a queue that keeps stopping without a print finishing is left alone after auto_resume_max tries."""
    from hardware.printer import CupsPrinter

    cfg = config_file(
        profiles=[VIVID],
        printer=printer_config(
            queue.name, auto_resume=True, auto_resume_delay_s=1, auto_resume_max=2, poll_interval_s=0.3
        ),
    )
    cups = CupsPrinter(queue.name)
    try:
        with booth(cfg) as rt:
            job = done_job(rt.agent, two_tone((600, 800)))
            queue.disable("usb link lost")
            pid = rt.agent.request(Command("print", "kiosk", job_id=job.id)).result(timeout=5)["print_id"]
            wait_print(rt.agent, pid, ("held",), timeout=10)
            rec = wait_print(rt.agent, pid)  # re-enabled by the service, then printed
            queue.output(rec.cups_job_id)
            # now it keeps stopping with nothing printed: two tries, then it says it gave up
            for _ in range(2):
                queue.disable("usb link lost")
                wait_until(lambda: cups.status().enabled, timeout=10, what="auto_resume to enable the queue")
            queue.disable("usb link lost")
            wait_until(
                lambda: "auto_resume gave up after 2 tries" in (rt.agent.state()["printer"].get("detail") or ""),
                timeout=10,
                what="auto_resume to give up",
            )
            time.sleep(1.5)
            assert not cups.status().enabled  # left for a person
    finally:
        queue.enable()
