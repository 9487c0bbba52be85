"""`edge-agent demo`: the whole loop on one machine, no account and no camera needed.

It starts the built-in simulator, writes a config (synthetic camera; one EasyAI and one Haiyi profile pointing
at the simulator), starts the agent with its local HTTP API, triggers N jobs through that API as a kiosk would,
follows them on the event stream and prints where the results are.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import httpx

from agent.config import load_config

DEMO_KEY = "sk-demo-not-a-secret"
KEY_ENV = "EDGE_AGENT_DEMO_KEY"

DEMO_TOML = """\
# Written by `edge-agent demo`: the simulator at {sim_url} stands in for both platforms.
[device]
id = "demo"
state_dir = "state"
output_dir = "results"

[camera]
driver = "synthetic"
width = 1280
height = 960

[platforms.easy]
kind = "easyai"
base_url = "{sim_url}"
api_key_env = "{key_env}"
poll_interval_s = 0.5

[platforms.haiyi]
kind = "haiyi"
base_url = "{sim_url}"
api_key_env = "{key_env}"
poll_interval_s = 0.5

[[profiles]]
name = "cartoon"
platform = "easy"
endpoint = "images.edits"
model = "cartoon"
prompt = "make it a cartoon"
params = {{ resolution = "1K", n = 1 }}

[[profiles]]
name = "tryon"
platform = "haiyi"
endpoint = "apps.run"
workflow_id = "1234"
cluster = "auto"
prompt = "a red dress"

[http]
listen = "127.0.0.1:0"

[queue]
min_free_disk_mb = 50
"""


def run_demo(count: int, out_dir: Path, latency: float = 1.5, keep_serving: bool = False) -> int:
    from agent.httpapi import SAME_ORIGIN_PROOF
    from agent.runtime import Runtime
    from agent.simulator import SimConfig, Simulator

    out_dir = out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        print(f"edge-agent: --dir {out_dir} is a file, not a folder", file=sys.stderr)
        return 2
    if (out_dir / "state" / "jobs.db").exists() and not (out_dir / "demo.toml").exists():
        # never let the simulator "deliver" a real booth's queued guest photos
        print(f"edge-agent: {out_dir} holds a queue the demo did not create; choose another --dir", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    sim = Simulator(SimConfig(host="127.0.0.1", port=0, api_keys=(DEMO_KEY,), latency=latency, seed=7))
    sim_url = sim.start()
    os.environ[KEY_ENV] = DEMO_KEY
    cfg_path = out_dir / "demo.toml"
    cfg_path.write_text(DEMO_TOML.format(sim_url=sim_url, key_env=KEY_ENV))
    loaded = load_config(cfg_path)
    rt = Runtime(loaded, gpio=False)  # the same composition as `edge-agent run`, minus buttons and LEDs
    rt.start()
    agent, api = rt.agent, rt.api
    print(f"simulator   {sim_url}")
    print(f"agent API   {api.url}/api/state   (events: {api.url}/api/events)")
    print(f"config      {cfg_path}")
    ok = 0
    try:
        profiles = [p.name for p in loaded.config.profiles]
        job_ids: list[str] = []
        with httpx.Client(base_url=api.url, timeout=30) as http, agent.events.subscribe() as sub:
            for i in range(count):
                r = http.post(
                    "/api/capture",
                    json={"profile": profiles[i % len(profiles)], "source": "kiosk"},
                    headers=SAME_ORIGIN_PROOF,  # as the kiosk page sends it: the API's same-origin proof
                )
                if r.status_code != 202:
                    print(f"capture refused: {r.text}", file=sys.stderr)
                    return 1
                job_ids.append(r.json()["job_id"])
                print(f"captured    job {job_ids[-1]} ({profiles[i % len(profiles)]})")
            _follow(agent, sub, job_ids)
            for jid in job_ids:
                job = http.get(f"/api/jobs/{jid}").json()
                if job["state"] == "done":
                    ok += 1
                    for o in job["outputs"]:
                        print(f"result      {o['path']}")
                else:
                    print(f"job {jid} {job['state']}: {job.get('error')}", file=sys.stderr)
        print(f"{ok}/{count} jobs done; everything is under {out_dir}")
        if keep_serving:
            print("serving until Ctrl-C ...")
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        rt.stop()
        sim.stop()
    return 0 if ok == count else 1


def _follow(agent, sub, job_ids: list[str], timeout: float = 300.0) -> None:
    """Print each job's state changes from the event stream until all are final."""
    pending = set(job_ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        ev = sub.get(timeout=0.5)
        if ev is None:
            for jid in list(pending):
                if agent.store.get(jid).state.final:
                    pending.discard(jid)
            continue
        jid = ev.data.get("job_id")
        if jid not in pending or ev.type == "job.captured":
            continue
        if ev.type == "job.progress":
            print(f"  {jid[:8]}  {ev.data.get('progress', 0):>3}%")
        else:
            print(
                f"  {jid[:8]}  {ev.type.removeprefix('job.')}"
                + (f": {ev.data['error']}" if ev.data.get("error") else "")
            )
        if ev.type in ("job.done", "job.failed", "job.cancelled", "job.expired"):
            pending.discard(jid)


__all__ = ["run_demo"]
