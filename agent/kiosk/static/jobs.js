// The jobs this screen started: kept in localStorage (a reloaded or restarted browser finds them again), each
// refreshed from /api/jobs/<id> whenever an event names it, so every waiting screen follows its own job.
// A finished job is kept only briefly (see prune): a later guest must not find an earlier guest's picture.

import { getJSON } from "/kiosk/api.js";

const KEY = "edge-agent.kiosk.jobs";
const KEEP_MS = 6 * 3600 * 1000; // a job older than this is forgotten by the screen (it stays in the queue)
const STAGES = { captured: "queued", submitting: "uploading", submitted: "running", downloading: "downloading", done: "done" };

export class Jobs {
  constructor(onChange) {
    this.onChange = onChange;
    this.map = new Map(); // id -> {id, at, seen, left, doneAt, job}
    this.pending = new Map(); // id -> timer of a coming refresh
    try {
      for (const e of JSON.parse(localStorage.getItem(KEY) || "[]")) {
        if (e && typeof e.id === "string" && Date.now() - e.at < KEEP_MS) this.map.set(e.id, { ...e, job: null });
      }
    } catch (e) { /* a damaged entry: start empty */ }
  }

  save() {
    const list = [...this.map.values()].map(({ id, at, seen, left, doneAt }) => ({ id, at, seen, left, doneAt }));
    localStorage.setItem(KEY, JSON.stringify(list));
  }

  track(id, job) {
    this.map.set(id, { id, at: Date.now(), seen: false, left: false, doneAt: null, job: job || null });
    this.save();
    this.refresh(id);
  }

  get(id) { const e = this.map.get(id); return e ? e.job : null; }
  has(id) { return this.map.has(id); }
  entries() { return [...this.map.values()].sort((a, b) => a.at - b.at); }

  markSeen(id) {
    const e = this.map.get(id);
    if (e && !e.seen) { e.seen = true; this.save(); }
  }

  forget(id) { if (this.map.delete(id)) this.save(); }

  // The guest said goodbye while the job was still going (Done on the waiting screen): no chip for it any more.
  leave(id) {
    const e = this.map.get(id);
    if (e) { e.left = true; this.save(); }
  }

  // Finished jobs of guests who left (or who never came back within `keepMs` of the result): forgotten, so no
  // chip, no reloaded browser and no later guest can open them. `keep` is the job on screen now.
  prune(keepMs, keep) {
    const now = Date.now();
    for (const e of [...this.map.values()]) {
      if (e.id === keep || !e.job || !isFinal(e.job)) continue;
      if (e.left || e.seen || e.job.state !== "done" || now - (e.doneAt || now) >= keepMs) this.forget(e.id);
    }
  }

  // The moment this screen first saw the job done (the chip's clock starts then, also after a browser restart).
  _stamp(e) {
    if (e.job && e.job.state === "done" && !e.doneAt) { e.doneAt = Date.now(); this.save(); }
  }

  async refresh(id) {
    try {
      const job = await getJSON("/api/jobs/" + id);
      const e = this.map.get(id);
      if (e) { e.job = job; this._stamp(e); this.onChange(id); }
    } catch (err) {
      if (err.status === 404) { this.forget(id); this.onChange(id); } // purged: nothing left to show
    }
  }

  refreshAll() { for (const id of this.map.keys()) this.refresh(id); }

  // An event about one of our jobs: take what it says at once, then fetch the whole job shortly after (several
  // events in a burst make one request).
  event(data) {
    const e = this.map.get(data.job_id);
    if (!e) return;
    // a final state waits for the fetch: the event does not carry everything the result screen needs
    if (e.job && !(data.state && isFinal(data))) {
      for (const k of ["state", "progress", "queue_position", "stage", "step", "eta_s"]) {
        if (k in data) e.job[k] = data[k];
      }
      this.onChange(data.job_id);
    }
    if (!this.pending.has(data.job_id)) {
      this.pending.set(data.job_id, setTimeout(() => { this.pending.delete(data.job_id); this.refresh(data.job_id); }, 150));
    }
  }
}

export function isFinal(job) {
  return ["done", "failed", "cancelled", "expired"].includes(job.state);
}

// What a guest should read about a job: a kind (waiting | offline | busy | done | failed) and the details.
export function guestView(job, agentState) {
  if (job.state === "done") return { kind: "done" };
  if (isFinal(job)) return { kind: "failed" };
  const platforms = (agentState && agentState.platforms) || {};
  let kind = "waiting";
  if (job.state === "captured" && (job.wait_kind === "network" || platforms[job.platform] === "offline")) kind = "offline";
  else if (job.wait_kind === "rate_limit") kind = "busy";
  return {
    kind,
    stage: job.stage || STAGES[job.state] || "queued",
    progress: typeof job.progress === "number" ? Math.max(0, Math.min(100, job.progress)) : null,
    step: job.step || null,
    ahead: typeof job.queue_position === "number" && job.queue_position > 0 ? job.queue_position : null,
    eta: typeof job.eta_s === "number" && job.eta_s > 0 ? job.eta_s : null,
  };
}

// The path of a result on this device (outputs carry absolute URLs that may name http.public_url).
export function localPath(url) {
  try { return new URL(url, location.href).pathname; } catch (e) { return url; }
}

export function sharePath(job) {
  return job && job.share_url ? localPath(job.share_url) : null;
}
