// The kiosk's link to the agent: JSON fetches (state-changing ones carry the same-origin proof), the event
// stream (reconnecting by itself after a daemon restart) and the texts.

const PROOF = { "X-Edge-Agent": "1", "Content-Type": "application/json" };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function answer(r) {
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) {
    const err = (body && body.error) || {};
    throw new ApiError(r.status, err.code || "http_" + r.status, err.message || r.statusText);
  }
  return body;
}

export async function getJSON(path) {
  let r;
  try { r = await fetch(path, { cache: "no-store" }); } catch (e) { throw new ApiError(0, "network", String(e)); }
  return answer(r);
}

export async function postJSON(path, body) {
  let r;
  try {
    r = await fetch(path, { method: "POST", headers: PROOF, body: JSON.stringify(body || {}), cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "network", String(e));
  }
  return answer(r);
}

// Event names the page follows; EventSource needs one listener per name.
const EVENTS = [
  "agent.state", "agent.mode", "capture.refused", "result",
  "job.captured", "job.submitting", "job.submitted", "job.downloading", "job.done", "job.failed",
  "job.cancelled", "job.expired", "job.progress",
  "print.queued", "print.sent", "print.printing", "print.printed", "print.failed", "print.held", "job.printed",
];

// One EventSource; when the browser gives up on it (an HTTP error while the daemon restarts), a new one is
// opened after a pause. `onUp` runs whenever the stream (re)opens, so the page can ask again where its jobs are.
export class Events {
  constructor(onEvent, onUp, onDown) {
    this.onEvent = onEvent;
    this.onUp = onUp;
    this.onDown = onDown;
    this.es = null;
    this.retry = 1000;
    this.connect();
  }

  connect() {
    const es = new EventSource("/api/events");
    this.es = es;
    es.onopen = () => { this.retry = 1000; this.onUp(); };
    es.onerror = () => {
      this.onDown();
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(() => { if (this.es === es) this.connect(); }, this.retry);
        this.retry = Math.min(this.retry * 2, 10000);
      }
    };
    for (const name of EVENTS) {
      es.addEventListener(name, (ev) => {
        let data = {};
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        this.onEvent(name, data);
      });
    }
  }
}

export class Texts {
  constructor(settings) {
    this.all = settings.texts;
    this.fallback = settings.language;
    this.lang = settings.language;
  }
  t(key, params) {
    let s = (this.all[this.lang] || {})[key];
    if (s === undefined) s = (this.all.en || {})[key] || key;
    for (const [k, v] of Object.entries(params || {})) s = s.replace("{" + k + "}", String(v));
    return s;
  }
  // A text with a count: the language's plural form of `key` ("key.one", "key.other"; Chinese has only other).
  n(key, count, params) {
    const form = new Intl.PluralRules(this.lang).select(count);
    const has = (k) => (this.all[this.lang] || {})[k] !== undefined || (this.all.en || {})[k] !== undefined;
    return this.t(has(`${key}.${form}`) ? `${key}.${form}` : `${key}.other`, params);
  }
  apply(root) {
    document.documentElement.lang = this.lang;
    for (const el of root.querySelectorAll("[data-t]")) el.textContent = this.t(el.dataset.t);
  }
}
