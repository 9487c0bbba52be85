// The print button's truth: one print per job at a time, followed over the event stream (queued, sent,
// printing, printed, held, failed), and the POST's refusals turned into a guest's words. render.js shows it.

import { ApiError, postJSON } from "/kiosk/api.js";

const FINAL = ["printed", "failed", "refused"];

// Why a print was refused, as a text key ("printer": the printer's own note says why).
function refusal(e) {
  if (!(e instanceof ApiError)) return "print.failed";
  const m = e.message || "";
  if (e.code === "limit") {
    // the service names the limit it hit ([printer] cooldown_s / max_prints_per_event / max_prints_per_job)
    if (/cooldown_s|cooling down/.test(m)) return "print.cooldown";
    if (/max_prints_per_event/.test(m)) return "print.limit_event";
    return "print.limit_job";
  }
  if (e.code === "unavailable" || e.code === "printer") return "printer";
  return "print.failed";
}

export class Prints {
  constructor(onChange, watch) {
    this.onChange = onChange; // (job id) -> the screen shows it again
    this.watch = watch; // (job id) -> is this one of the screen's jobs?
    this.byJob = new Map(); // job id -> {id, state, detail, why}
    this.early = new Map(); // print id -> {state, detail}: events that came before the POST's answer
  }

  get(jobId) { return this.byJob.get(jobId) || null; }

  busy(jobId) {
    const rec = this.get(jobId);
    return !!rec && !FINAL.includes(rec.state);
  }

  async request(jobId) {
    if (!jobId || this.busy(jobId)) return; // a second tap while the first print goes: nothing more
    this.set(jobId, { id: null, state: "posting", detail: null, why: null });
    let rec;
    try {
      const r = await postJSON(`/api/jobs/${jobId}/print`, { source: "kiosk", request_id: `print-${jobId}-${Date.now()}` });
      rec = { id: r.print_id, state: r.state, detail: null, why: null, ...(this.early.get(r.print_id) || {}) };
      this.early.delete(r.print_id);
    } catch (e) {
      rec = { id: null, state: "refused", detail: null, why: refusal(e) };
    }
    this.set(jobId, rec);
  }

  // print.<state> from the event stream
  event(name, data) {
    const state = name.slice("print.".length);
    if (!data.job_id || !data.print_id) return;
    const rec = this.byJob.get(data.job_id);
    const now = { state, detail: data.detail || null };
    if (rec && rec.state === "posting") { this.early.set(data.print_id, now); return; }
    // ours, or another print of this job (auto print, the button) when ours is not going: the guest sees it
    if (rec && rec.id !== data.print_id && !FINAL.includes(rec.state)) return;
    if (!rec && !this.watch(data.job_id)) return;
    this.set(data.job_id, { id: data.print_id, why: null, ...now });
  }

  forget(jobId) { this.byJob.delete(jobId); }

  set(jobId, rec) {
    this.byJob.set(jobId, rec);
    this.onChange(jobId);
  }
}
