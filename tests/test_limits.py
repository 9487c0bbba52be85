"""Limits of the core (5/11): a full disk under queued jobs, floods of remote captures, a bounded queue, remote TTL,
a guest always first, deadlines that survive a restart and a clock step."""

from __future__ import annotations

import logging
import resource
import time
from pathlib import Path

import pytest

from agent import clock
from agent.commands import Command, CommandError
from agent.config import load_config
from agent.core import Agent
from agent.jobs.model import JobState
from tests.support.configs import TEST_KEY, base_config, merge, write_config
from tests.support.disk import fill, small_disk
from tests.support.proc import wait_until

S = JobState


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def test_a_disk_that_fills_under_queued_jobs_pauses_them_quietly_and_they_resume(tmp_path: Path, sim, caplog) -> None:
    sim.configure(latency=0.05)  # SLOW: 1.5 s on the GPU, long enough to fill the disk meanwhile
    with small_disk(tmp_path) as disk:
        data = merge(
            base_config(tmp_path, sim.url),
            {
                "device": {"state_dir": str(disk / "state"), "output_dir": str(disk / "results")},
                "queue": {"min_free_disk_mb": 0},
            },
        )
        agent = Agent(load_config(write_config(tmp_path / "config.toml", data)))
        agent.start()
        try:
            ids = [
                agent.request(Command("capture", "button", profile="oil", params={"prompt": "SLOW"})).result(10)[
                    "job_id"
                ]
                for _ in range(3)
            ]
            wait_until(lambda: all(agent.store.get(i).state == S.SUBMITTED for i in ids), what="submitted")
            filler = fill(disk, leave_mb=0)
            with caplog.at_level(logging.INFO):
                wait_until(lambda: agent.mode == "disk_full", timeout=15, what="disk_full mode")
                before, t0 = cpu_s(), time.monotonic()
                time.sleep(3.0)  # the tasks are done on the platform; their results cannot be stored
                busy = (cpu_s() - before) / (time.monotonic() - t0)
            lines = [r for r in caplog.records if r.levelno >= logging.WARNING and "agent" in r.name]
            print(f"\ndisk full under 3 queued jobs: {busy:.1%} of a CPU, {len(lines)} warning/error line(s) in 3 s")
            assert busy < 0.2, f"the scheduler used {busy:.0%} of a CPU while the disk was full"
            assert len([r for r in lines if "storage full" in r.getMessage()]) == 1, [r.getMessage() for r in lines]
            assert not [r for r in lines if r.exc_info], "no tracebacks"
            assert all(agent.store.get(i).state in (S.SUBMITTED, S.DOWNLOADING) for i in ids)  # waiting, not failed
            assert not list((disk / "results").rglob("*.part")), "no partial downloads left"
            filler.unlink()
            for jid in ids:
                assert agent.wait_for(jid, timeout=20).state == S.DONE
            wait_until(lambda: agent.mode == "ready", timeout=5, what="ready again")
        finally:
            agent.stop()
            sim.configure(latency=0.2)


def test_a_task_that_finished_while_the_daemon_was_away_is_polled_before_it_expires(config_file, sim) -> None:
    sim.configure(latency=0.05)
    try:
        a = Agent(load_config(config_file(queue={"task_deadline_s": 2})))
        a.start()
        jid = a.request(Command("capture", "button", profile="oil", params={"prompt": "SLOW"})).result(10)["job_id"]
        wait_until(lambda: a.store.get(jid).state == S.SUBMITTED, what="submitted")
        a.stop()
        time.sleep(3.0)  # the task finishes (1.5 s) and the deadline (2 s) passes while nobody polls
        b = Agent(load_config(config_file(queue={"task_deadline_s": 2})))
        b.start()
        try:
            job = b.wait_for(jid, timeout=20)
            assert job.state == S.DONE, job.error  # one last poll found it finished
        finally:
            b.stop()
    finally:
        sim.configure(latency=0.2)


def test_a_clock_step_never_expires_a_running_task(tmp_path: Path, monkeypatch) -> None:
    """NTP steps the clock of a Pi without an RTC by hours once the network is up: deadlines and backoff use the
    run's own clock (agent/clock.py), so a task running at that moment is not expired by the step. The platform
    runs in its own process (`edge-agent simulate`), so only the agent's process sees its clock jump."""
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).parent / "edge-agent"
    sim = subprocess.Popen(
        [str(exe), "simulate", "--host", "127.0.0.1", "--port", str(port), "--latency", "0.05", "--key", TEST_KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(httpx, url), timeout=15, what="the simulator")
        cfg = write_config(
            tmp_path / "config.toml", merge(base_config(tmp_path, url), {"queue": {"task_deadline_s": 60}})
        )
        agent = Agent(load_config(cfg))
        agent.start()
        try:
            jid = agent.request(Command("capture", "button", profile="oil", params={"prompt": "SLOW"})).result(10)[
                "job_id"
            ]
            wait_until(lambda: agent.store.get(jid).state == S.SUBMITTED, what="submitted")
            real = time.time
            monkeypatch.setattr(time, "time", lambda: real() + 6 * 3600)  # the system clock jumps 6 hours ahead
            assert clock.step_seconds() > 6 * 3600 - 5
            job = agent.wait_for(jid, timeout=20)
            assert job.state == S.DONE, job.error
            assert job.finished_at is not None and job.finished_at < real() + 60  # the run's clock did not jump
        finally:
            agent.stop()
    finally:
        sim.terminate()
        sim.wait(10)


def _answers(httpx, url: str) -> bool:
    try:
        httpx.get(url + "/v1/ai/result/probe", timeout=1)
        return True
    except httpx.HTTPError:
        return False


# ---------------------------------------------------------------------------------------------- floods


def test_remote_captures_are_rate_limited_per_source_and_a_guest_is_not(config_file) -> None:
    agent = Agent(load_config(config_file(queue={"remote_rate_per_min": 6})))  # a burst of 3, then 1 per 10 s
    agent.start()
    try:
        ok, refused = 0, []
        for i in range(10):
            try:
                agent.request(Command("capture", "mqtt", request_id=f"m-{i}")).result(10)
                ok += 1
            except CommandError as e:
                refused.append(e)
        assert ok == 3 and {e.code for e in refused} == {"rate_limited"}
        assert "queue.remote_rate_per_min" in refused[0].message
        # another source has its own bucket; a guest at the booth is never rate-limited
        agent.request(Command("capture", "http")).result(10)
        for _ in range(5):
            agent.request(Command("capture", "button")).result(10)
    finally:
        agent.stop()


def test_a_full_queue_refuses_remote_captures_but_serves_a_guest(config_file) -> None:
    dead = "http://127.0.0.1:9"  # nothing drains the queue
    agent = Agent(load_config(config_file(platforms={"easy": {"base_url": dead}}, queue={"max_jobs": 3})))
    agent.start()
    try:
        for _ in range(3):
            agent.request(Command("capture", "http")).result(10)
        with pytest.raises(CommandError) as e:
            agent.request(Command("capture", "mqtt")).result(10)
        assert e.value.code == "queue_full" and "queue.max_jobs = 3" in e.value.message
        assert e.value.http_status == 503
        res = agent.request(Command("capture", "kiosk")).result(10)  # a guest is still served
        assert agent.store.get(res["job_id"]).state == S.CAPTURED
        assert agent.store.usage()[0] == 4
    finally:
        agent.stop()


def test_the_queue_bound_counts_bytes_too(config_file) -> None:
    agent = Agent(
        load_config(config_file(platforms={"easy": {"base_url": "http://127.0.0.1:9"}}, queue={"max_bytes_mb": 1}))
    )
    agent.start()
    try:
        n = 0
        with pytest.raises(CommandError) as e:
            while n < 500:
                agent.request(Command("capture", "http")).result(10)
                n += 1
        assert e.value.code == "queue_full" and "queue.max_bytes_mb = 1" in e.value.message
        jobs, used = agent.store.usage()
        assert used >= 1_048_576 and jobs == n
    finally:
        agent.stop()


def test_a_remote_capture_not_sent_within_its_ttl_expires(config_file) -> None:
    agent = Agent(
        load_config(config_file(platforms={"easy": {"base_url": "http://127.0.0.1:9"}}, queue={"remote_ttl_s": 1}))
    )
    agent.start()
    try:
        remote = agent.request(Command("capture", "mqtt")).result(10)["job_id"]
        guest = agent.request(Command("capture", "button")).result(10)["job_id"]
        job = agent.wait_for(remote, timeout=10)
        assert job.state == S.EXPIRED and "queue.remote_ttl_s=1s" in (job.error or "")
        assert agent.store.get(guest).state == S.CAPTURED  # a guest's photo waits for the platform
    finally:
        agent.stop()


def test_a_guest_press_goes_ahead_of_waiting_remote_captures(config_file) -> None:
    """Captures take turns at the one camera: a button press is taken before remote captures already waiting."""
    agent = Agent(load_config(config_file(camera={"driver": "synthetic", "width": 1920, "height": 1080})))
    agent.start()
    try:
        remote = [agent.request(Command("capture", "mqtt", request_id=f"r{i}")) for i in range(8)]
        guest = agent.request(Command("capture", "button"))
        gid = guest.result(20)["job_id"]
        rids = [f.result(20)["job_id"] for f in remote]
        order = sorted([gid, *rids], key=lambda j: agent.store.get(j).created_at)
        assert order.index(gid) <= 1, "the guest's photo was taken right after the capture already running"
    finally:
        agent.stop()


def test_a_phone_cannot_claim_to_be_the_kiosk_to_skip_the_rate_limit(config_file) -> None:
    import httpx

    from agent.httpapi import HttpApi
    from tests.support.http import PROOF

    agent = Agent(load_config(config_file(queue={"remote_rate_per_min": 6})))  # a burst of 3
    agent.start()
    api = HttpApi(agent)
    api.start()
    try:
        phone = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10)
        codes = [
            phone.post(f"{api.url}/api/capture", json={"source": "kiosk"}, headers=PROOF).status_code for _ in range(5)
        ]
        assert codes == [202, 202, 202, 429, 429]
        assert {j.source for j in agent.store.list()} == {"http"}
        # the booth's own kiosk (loopback) is a guest: never rate-limited
        kiosk = httpx.Client(timeout=10)
        assert [
            kiosk.post(f"{api.url}/api/capture", json={"source": "kiosk"}, headers=PROOF).status_code for _ in range(5)
        ] == [202] * 5
    finally:
        api.stop()
        agent.stop()


def test_a_dripping_result_host_never_holds_the_booth(tmp_path: Path, sim) -> None:
    """A result host sending one byte every second: each download is cut at its deadline, at most two run at
    once, and a guest's job on another platform finishes about as fast as on an idle booth."""
    from tests.support.hostile import PNG_HEAD, HostileServer, drip, json_reply

    with HostileServer() as srv:
        srv.route("/v1/images/edits", json_reply({"status": "success", "data": [{"url": f"{srv.url}/out.png"}]}))
        srv.route("/out.png", drip(PNG_HEAD * 40, every_s=1.0, first=16))
        data = merge(
            base_config(tmp_path, sim.url),
            {
                "platforms": {
                    "drip": {
                        "kind": "easyai",
                        "base_url": srv.url,
                        "api_key_env": "EDGE_AGENT_TEST_KEY",
                        "download_deadline_s": 2,
                        "max_downloads_per_host": 2,
                    }
                },
                "profiles": [
                    {
                        "name": "cartoon",
                        "platform": "easy",
                        "endpoint": "images.edits",
                        "model": "cartoon",
                        "prompt": "x",
                    },
                    {"name": "slow", "platform": "drip", "endpoint": "images.edits", "model": "m", "prompt": "x"},
                ],
            },
        )
        agent = Agent(load_config(write_config(tmp_path / "config.toml", data)))
        agent.start()
        try:

            def guest() -> float:
                t0 = time.monotonic()
                jid = agent.request(Command("capture", "button", profile="cartoon")).result(10)["job_id"]
                assert agent.wait_for(jid, timeout=30).state == S.DONE
                return time.monotonic() - t0

            idle = guest()
            t0 = time.monotonic()
            slow = [agent.request(Command("capture", "mqtt", profile="slow")).result(10)["job_id"] for _ in range(6)]
            wait_until(lambda: srv.hits.get("/out.png", 0) >= 2, timeout=10, what="downloads dripping")
            busy = guest()
            print(
                f"\nguest job: {idle:.2f} s idle, {busy:.2f} s while 6 downloads drip "
                f"(at most {srv.max_active.get('/out.png', 0)} at once)"
            )
            assert busy < idle + 3.0
            assert srv.max_active.get("/out.png", 0) <= 2  # per-host slots: never every job thread
            # each download is cut at its deadline and retried later: the jobs wait, nothing hangs
            wait_until(lambda: all(agent.store.get(j).error for j in slow), timeout=20, what="downloads cut off")
            job = agent.store.get(slow[0])
            assert job.state in (S.DOWNLOADING, S.EXPIRED, S.FAILED)
            assert time.monotonic() - t0 < 30
        finally:
            agent.stop()


def test_a_2xx_submit_reply_that_is_not_json_is_not_resent_forever(tmp_path: Path, sim) -> None:
    """The platform may have accepted (and charged for) the task behind a proxy page: like a slow answer, it
    counts against the submit-timeouts bound instead of being resubmitted without end."""
    from agent.jobs.retry import MAX_SUBMIT_TIMEOUTS
    from tests.support.hostile import HostileServer, reply

    with HostileServer() as srv:
        srv.route("/v1/ai/generations", reply(b"<html><body>Accepted</body></html>", content_type="text/html"))
        data = merge(
            base_config(tmp_path, sim.url),
            {
                "platforms": {"odd": {"kind": "easyai", "base_url": srv.url, "api_key_env": "EDGE_AGENT_TEST_KEY"}},
                "profiles": [{"name": "odd", "platform": "odd", "endpoint": "ai.generations", "model": "m"}],
            },
        )
        agent = Agent(load_config(write_config(tmp_path / "config.toml", data)))
        agent.start()
        try:
            jid = agent.request(Command("capture", "button", profile="odd")).result(10)["job_id"]
            job = agent.wait_for(jid, timeout=30)
            assert job.state == S.FAILED and "not a task" in (job.error or ""), job.error
            assert srv.hits["/v1/ai/generations"] == MAX_SUBMIT_TIMEOUTS == 3
        finally:
            agent.stop()


def test_a_slot_freed_by_a_finished_task_goes_to_the_next_photo_at_once(tmp_path: Path, sim) -> None:
    """One slot on the platform: each sync answer frees it while its result still downloads (slowly), and the
    next waiting photo is submitted right then, not at the scheduler's next round."""
    from tests.support.hostile import PNG_HEAD, HostileServer, drip, json_reply

    posts: list[tuple[float, float]] = []  # (arrived, answered) of each submit

    def edits(h, req) -> None:  # type: ignore[no-untyped-def]
        arrived = time.monotonic()
        time.sleep(0.4)  # the platform thinks
        json_reply({"status": "success", "data": [{"url": f"{srv.url}/out.png"}]})(h, req)
        posts.append((arrived, time.monotonic()))

    with HostileServer() as srv:
        srv.route("/v1/images/edits", edits)
        srv.route("/out.png", drip(PNG_HEAD * 2, every_s=0.05, first=len(PNG_HEAD)))  # ~1.6 s per download
        data = merge(
            base_config(tmp_path, sim.url),
            {
                "platforms": {"one": {"kind": "easyai", "base_url": srv.url, "api_key_env": "EDGE_AGENT_TEST_KEY"}},
                "profiles": [{"name": "p", "platform": "one", "endpoint": "images.edits", "model": "m", "prompt": "x"}],
                "queue": {"max_in_flight": 1},
            },
        )
        agent = Agent(load_config(write_config(tmp_path / "config.toml", data)))
        agent.start()
        try:
            ids = [agent.request(Command("capture", "button", profile="p")).result(10)["job_id"] for _ in range(4)]
            for jid in ids:
                assert agent.wait_for(jid, timeout=60).state == JobState.DONE
        finally:
            agent.stop()
    posts.sort()
    waits = [round(nxt[0] - prev[1], 3) for prev, nxt in zip(posts, posts[1:])]
    print(f"\nfrom one answer to the next submit: {waits} s")
    assert len(posts) == 4 and max(waits) < 0.3, waits  # the loop's round is up to 1 s
