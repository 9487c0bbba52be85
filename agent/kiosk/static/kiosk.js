// The guest's screen: attract -> choose -> (consent) -> countdown over the live preview -> flash -> waiting ->
// result, and a screen for every failure. One screen is shown at a time; jobs of earlier guests go on in the
// tray at the bottom, each opening its own waiting or result screen.

import { ApiError, Events, Texts, getJSON, postJSON } from "/kiosk/api.js";
import { Jobs, isFinal, localPath } from "/kiosk/jobs.js";
import { Prints } from "/kiosk/print.js";
import * as R from "/kiosk/render.js";

const $ = (id) => document.getElementById(id);
const CURRENT = "edge-agent.kiosk.current";

const K = {
  settings: null,
  texts: null,
  profiles: [],
  state: {},
  screen: "attract",
  guest: null, // {profile, choice, consented}
  current: null, // the job id the waiting/result/failed screen shows
  timers: {},
  countdown: null,
  capturing: false,
  slides: [],
  slideAt: 0,
};

function t(key, params) { return K.texts.t(key, params); }

// ------------------------------------------------------------------------------------------------ screens

function show(name) {
  if (K.screen === "capture" && name !== "capture") stopPreview();
  K.screen = name;
  for (const s of document.querySelectorAll(".screen")) s.classList.toggle("active", s.id === "s-" + name);
  document.body.dataset.screen = name;
  if (name === "attract") { R.renderAttract(K); startSlides(); } else stopSlides();
  sessionStorage.setItem(CURRENT, JSON.stringify({ screen: name, job: K.current }));
  armIdle();
  R.renderTray(K, openJob);
  const first = document.querySelector(`#s-${name} .primary:not([hidden]), #s-${name} .card`);
  if (first) first.focus({ preventScroll: true });
}

function clearTimer(name) { clearTimeout(K.timers[name]); clearInterval(K.timers[name]); delete K.timers[name]; }

// Screens a guest may walk away from go back to attract by themselves.
function armIdle() {
  clearTimer("idle");
  const s = K.settings;
  const limit = { choose: s.idle_timeout_s, consent: s.idle_timeout_s, failed: s.idle_timeout_s, error: s.idle_timeout_s,
    waiting: s.waiting_timeout_s }[K.screen];
  if (limit) K.timers.idle = setTimeout(() => home(true), limit * 1000);
  if (K.screen === "result") startResultClock(); else clearTimer("result");
}

// The guest leaves: a result they saw is forgotten by the screen (no chip, no way back for the next guest); Done on
// the waiting screen means they take the QR code and go.
function leaveJob() {
  if (!K.current) return;
  if (K.screen === "result") { K.jobs.forget(K.current); K.prints.forget(K.current); }
  else if (K.screen === "waiting") K.jobs.leave(K.current);
  K.current = null;
}

function home(timedOut) {
  if (!timedOut || K.screen === "result") leaveJob();
  K.guest = null;
  K.current = null;
  if (timedOut && K.texts.lang !== K.settings.language) setLanguage(K.settings.language);
  show("attract");
}

function errorScreen(kind) {
  $("e-title").textContent = t(`error.${kind}.title`);
  $("e-body").textContent = t(`error.${kind}.body`);
  show("error");
}

// ------------------------------------------------------------------------------------------------ attract

async function startSlides() {
  stopSlides();
  const img = $("slide");
  if (!K.settings.attract_slideshow) { img.hidden = true; return; }
  try {
    const { jobs } = await getJSON(`/api/jobs?state=done&limit=${K.settings.attract_count}`);
    K.slides = jobs.flatMap((j) => j.outputs.filter((o) => o.type === "image" && o.url).map((o) => localPath(o.url)));
  } catch (e) { K.slides = []; }
  if (K.screen !== "attract" || !K.slides.length) { img.hidden = true; return; }
  const next = () => {
    img.src = K.slides[K.slideAt++ % K.slides.length];
    img.hidden = false;
  };
  next();
  K.timers.slides = setInterval(next, K.settings.attract_slide_s * 1000);
}

function stopSlides() { clearTimer("slides"); }

// ------------------------------------------------------------------------------------------------ choose

function start() {
  const why = R.blocked(K);
  if (why && K.screen === "attract" && why !== "busy") { R.renderAttract(K); return; } // it already says so
  if (why) { errorScreen(why); return; }
  K.guest = { profile: null, choice: null, consented: false };
  K.current = null;
  if (K.profiles.length === 1) pickProfile(K.profiles[0]);
  else chooseProfiles();
}

function fillCards(title, items) {
  $("choose-title").textContent = title;
  const box = $("cards");
  box.replaceChildren(...items);
  box.dataset.count = String(items.length);
  show("choose");
}

function chooseProfiles() {
  K.guest.profile = null;
  fillCards(t("choose.profile"), K.profiles.map((p, i) => {
    const thumb = (p.choices || []).find((c) => c.thumbnail_url);
    return R.card(R.profileLabel(p), thumb ? thumb.thumbnail_url : null, () => pickProfile(p), "hue" + (i % 6));
  }));
}

function pickProfile(p) {
  K.guest.profile = p;
  const choices = p.choices || [];
  if (choices.length) {
    fillCards(t("choose.choice"), choices.map((c, i) =>
      R.card(c.label || c.id, c.thumbnail_url, () => pickChoice(c.id), "hue" + (i % 6))));
  } else {
    pickChoice(null);
  }
}

function pickChoice(id) {
  K.guest.choice = id;
  if (K.settings.consent && !K.guest.consented) show("consent");
  else startCountdown();
}

function back() {
  if (K.screen === "capture") { cancelCountdown(); }
  if (K.screen === "choose" && K.guest && K.guest.profile && K.profiles.length > 1 && (K.guest.profile.choices || []).length) {
    chooseProfiles();
    return;
  }
  if ((K.screen === "capture" || K.screen === "consent") && K.guest && K.guest.profile) {
    const p = K.guest.profile;
    if ((p.choices || []).length) { pickProfile(p); return; }
    if (K.profiles.length > 1) { chooseProfiles(); return; }
  }
  home(false);
}

// ------------------------------------------------------------------------------------------------ capture

function startPreview() {
  const img = $("preview");
  const ph = $("placeholder");
  img.hidden = false;
  ph.hidden = true;
  img.onerror = () => { img.hidden = true; ph.hidden = false; }; // no preview route, or the camera is down
  img.src = "/api/preview.mjpg?t=" + Date.now();
}

function stopPreview() {
  const img = $("preview");
  img.onerror = null;
  img.removeAttribute("src"); // closes the MJPEG stream (it holds a connection)
}

function startCountdown() {
  show("capture");
  startPreview();
  let n = K.settings.countdown_s;
  const count = $("count");
  const msg = $("capture-msg");
  msg.textContent = t("capture.ready");
  const tick = () => {
    if (n <= 0) { cancelCountdown(); capture(); return; }
    count.textContent = String(n);
    count.classList.remove("pop");
    void count.offsetWidth; // restart the animation
    count.classList.add("pop");
    n -= 1;
  };
  tick();
  K.countdown = setInterval(tick, 1000);
}

function cancelCountdown() { clearInterval(K.countdown); K.countdown = null; $("count").textContent = ""; }

async function capture() {
  if (K.capturing) return;
  K.capturing = true;
  $("count").textContent = "";
  $("capture-msg").textContent = t("capture.smile");
  const flash = $("flash");
  flash.classList.remove("go");
  void flash.offsetWidth;
  flash.classList.add("go");
  setTimeout(() => flash.classList.remove("go"), 700); // never left over the next screen
  const g = K.guest || {};
  const body = { source: "kiosk", request_id: crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) };
  if (g.profile) body.profile = g.profile.name;
  if (g.choice) body.choice = g.choice;
  try {
    let r;
    for (let attempt = 0; ; attempt++) {
      try { r = await postJSON("/api/capture", body); break; } catch (e) {
        // the daemon restarting: the same request_id is answered with the same job, never a second photo
        if (e.code !== "network" || attempt >= 5) throw e;
        $("capture-msg").textContent = t("capture.saving");
        await new Promise((ok) => setTimeout(ok, 1000));
      }
    }
    K.jobs.track(r.job_id, null);
    openJob(r.job_id);
  } catch (e) {
    captureFailed(e);
  } finally {
    K.capturing = false;
  }
}

function captureFailed(e) {
  const code = e instanceof ApiError ? e.code : "";
  if (code === "camera") errorScreen("camera");
  else if (code === "disk_full" || code === "storage") errorScreen("disk");
  else if (["busy", "rate_limited", "queue_full", "unavailable"].includes(code)) errorScreen("busy");
  else errorScreen("unavailable");
}

// ------------------------------------------------------------------------------------------------ a job's screens

function openJob(id) {
  K.current = id;
  const job = K.jobs.get(id);
  if (job && job.state === "done") { R.renderResult(K, job); show("result"); K.jobs.markSeen(id); }
  else if (job && isFinal(job)) show("failed");
  else { R.renderWaiting(K); show("waiting"); }
}

function startResultClock() {
  clearTimer("result");
  let left = Math.round(K.settings.result_timeout_s);
  const tick = () => {
    if (left <= 0) { home(true); return; }
    $("r-back").textContent = t("result.back_in", { s: left });
    left -= 1;
  };
  tick();
  K.timers.result = setInterval(tick, 1000);
}

async function retryJob() {
  const id = K.current;
  try {
    await postJSON(`/api/jobs/${id}/retry`, {});
    await K.jobs.refresh(id);
    openJob(id);
  } catch (e) {
    errorScreen("unavailable");
  }
}

function jobChanged(id) {
  R.renderTray(K, openJob);
  if (id !== K.current) return;
  const job = K.jobs.get(id);
  if (!job) { if (["waiting", "result", "failed"].includes(K.screen)) home(false); return; }
  if (K.screen === "waiting") {
    if (isFinal(job)) openJob(id); else R.renderWaiting(K);
  } else if (K.screen === "failed" && !isFinal(job)) {
    openJob(id);
  } else if (K.screen === "result" && job.state === "done") {
    R.renderResult(K, job);
  }
}

// ------------------------------------------------------------------------------------------------ events

function onEvent(name, data) {
  if (name === "agent.state") {
    K.state = data;
    if (K.screen === "waiting") R.renderWaiting(K);
    if (K.screen === "result") R.printerNote(K);
    if (K.screen === "attract") R.renderAttract(K);
    return;
  }
  if (name.startsWith("print.")) { K.prints.event(name, data); return; }
  if (name.startsWith("job.") && data.job_id) K.jobs.event(data);
  if (name === "result" && data.job_id) K.jobs.event({ job_id: data.job_id });
}

function setLanguage(lang) {
  K.texts.lang = lang;
  K.texts.apply(document);
  const others = K.settings.languages.filter((l) => l !== lang);
  const btn = $("lang");
  btn.hidden = !K.settings.language_switch || !others.length;
  btn.textContent = t("lang.switch");
  btn.dataset.next = others[0] || lang;
  if (K.screen === "choose" && K.guest) { if (K.guest.profile && (K.guest.profile.choices || []).length) pickProfile(K.guest.profile); else chooseProfiles(); }
  if (K.screen === "waiting") R.renderWaiting(K);
  if (K.screen === "result") { startResultClock(); R.printerNote(K); }
  if (K.screen === "capture") $("capture-msg").textContent = t("capture.ready");
  if (K.screen === "attract") R.renderAttract(K);
  R.renderTray(K, openJob);
}

const ACTIONS = {
  start: () => { if (K.screen === "attract" || K.screen === "waiting") start(); },
  back: () => back(),
  agree: () => { if (K.guest) { K.guest.consented = true; startCountdown(); } },
  home: () => home(false),
  again: () => { leaveJob(); if (K.guest && K.guest.profile) startCountdown(); else start(); },
  print: () => K.prints.request(K.current),
  retry: () => retryJob(),
  lang: () => setLanguage($("lang").dataset.next),
};

function onClick(ev) {
  armIdle();
  const el = ev.target.closest("[data-action]");
  if (!el) return;
  ev.stopPropagation();
  const act = ACTIONS[el.dataset.action];
  if (act) act();
}

// A USB button or a keyboard: Space/Enter take the photo (or do the screen's main thing), Escape goes back.
function onKey(ev) {
  armIdle();
  const k = ev.key;
  if (k === "Escape") { ev.preventDefault(); if (K.screen !== "attract") back(); return; }
  if (k === "ArrowRight" || k === "ArrowLeft" || k === "ArrowDown" || k === "ArrowUp") {
    const cards = [...document.querySelectorAll(`#s-${K.screen} button:not([hidden])`)];
    const i = cards.indexOf(document.activeElement);
    const d = k === "ArrowRight" || k === "ArrowDown" ? 1 : -1;
    if (cards.length) cards[(i + d + cards.length) % cards.length].focus();
    ev.preventDefault();
    return;
  }
  if (k !== " " && k !== "Enter") return;
  ev.preventDefault();
  const focused = document.activeElement;
  if (K.screen === "attract" || K.screen === "waiting") start();
  else if (K.screen === "capture") { if (K.countdown) { cancelCountdown(); capture(); } }
  else if (K.screen === "result") ACTIONS.again();
  else if (focused && focused.matches("button:not([hidden])") && focused.closest(".screen.active")) focused.click();
  else { const p = document.querySelector(`#s-${K.screen} .primary, #s-${K.screen} .card`); if (p) p.click(); }
}

// ------------------------------------------------------------------------------------------------ start-up

async function loadProfiles() {
  try {
    const { profiles } = await getJSON("/api/profiles");
    if (Array.isArray(profiles) && profiles.length) return profiles;
  } catch (e) { /* the route may not exist yet: the state's profile names will do */ }
  return (K.state.profiles || []).map((name) => ({ name, choices: [] }));
}

async function boot() {
  for (;;) {
    try {
      K.settings = await getJSON("/kiosk/settings.json");
      K.state = await getJSON("/api/state");
      break;
    } catch (e) {
      await new Promise((ok) => setTimeout(ok, 2000)); // the daemon is starting
    }
  }
  K.texts = new Texts(K.settings);
  K.jobs = new Jobs(jobChanged);
  K.prints = new Prints((id) => { if (id === K.current && K.screen === "result") R.printerNote(K); }, (id) => K.jobs.has(id));
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(CURRENT) || "null"); } catch (e) { saved = null; }
  const back = saved && saved.job && K.jobs.has(saved.job) && ["waiting", "result", "failed"].includes(saved.screen);
  if (back) K.current = saved.job; // before any refresh: the screen's own job is never pruned as someone else's
  setLanguage(K.settings.language);
  K.profiles = await loadProfiles();
  K.jobs.refreshAll();
  document.addEventListener("click", onClick);
  document.addEventListener("keydown", onKey);
  document.addEventListener("pointerdown", armIdle);
  let down = false;
  K.events = new Events(onEvent, () => {
    $("conn").hidden = true;
    if (down) { down = false; K.jobs.refreshAll(); } // the daemon came back: where are our jobs now?
  }, () => { down = true; $("conn").hidden = false; });
  // a slow poll behind the events: nothing a missed event hid stays wrong for long
  setInterval(() => { for (const e of K.jobs.entries()) if (!e.job || !isFinal(e.job)) K.jobs.refresh(e.id); }, 5000);
  if (back) {
    await K.jobs.refresh(saved.job);
    openJob(saved.job);
  } else {
    show("attract");
  }
  document.body.dataset.ready = "1";
}

boot();
