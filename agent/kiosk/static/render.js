// What the job screens and the tray show: pure rendering from the page's state `K` (kiosk.js owns the flow).

import { guestView, isFinal, localPath, sharePath } from "/kiosk/jobs.js";

const $ = (id) => document.getElementById(id);

export function profileLabel(p) { return p.label || p.name.replace(/[_-]+/g, " ").replace(/^./, (c) => c.toUpperCase()); }

export function card(label, thumb, onPick, extraClass) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "card" + (extraClass ? " " + extraClass : "");
  const pic = document.createElement("div");
  pic.className = "thumb";
  if (thumb) {
    const img = document.createElement("img");
    img.alt = "";
    img.src = thumb;
    img.onerror = () => { img.remove(); pic.textContent = label.slice(0, 1); };
    pic.append(img);
  } else {
    pic.textContent = label.slice(0, 1);
  }
  const name = document.createElement("span");
  name.className = "label";
  name.textContent = label;
  b.append(pic, name);
  b.addEventListener("click", (ev) => { ev.stopPropagation(); onPick(); });
  return b;
}

export function setQr(K, boxId, imgId, job) {
  const path = K.settings.share ? sharePath(job) : null;
  $(boxId).hidden = !path;
  if (path && $(imgId).getAttribute("src") !== path + "/qr.svg") $(imgId).src = path + "/qr.svg";
}

export function renderWaiting(K) {
  const job = K.jobs.get(K.current);
  if (!job) { $("w-title").textContent = K.texts.t("capture.saving"); return; }
  const v = guestView(job, K.state);
  const title = { offline: "offline.title", busy: "busy.title" }[v.kind] || "waiting.title";
  $("w-title").textContent = K.texts.t(title);
  const body = { offline: "offline.body", busy: "busy.body" }[v.kind];
  $("w-body").hidden = !body;
  if (body) $("w-body").textContent = K.texts.t(body);
  document.getElementById("s-waiting").dataset.kind = v.kind;
  $("w-stage").textContent = v.stage ? K.texts.t("stage." + v.stage) : "";
  const bar = $("w-bar");
  bar.classList.toggle("unknown", v.progress === null);
  bar.style.width = v.progress === null ? "" : v.progress + "%";
  $("w-pct").textContent = v.progress === null ? "" : v.progress + " %";
  $("w-step").textContent = v.step ? K.texts.t("waiting.step", { step: v.step }) : "";
  $("w-ahead").textContent = v.ahead ? (v.ahead === 1 ? K.texts.t("waiting.ahead_one") : K.texts.t("waiting.ahead", { n: v.ahead })) : "";
  $("w-eta").textContent = !v.eta ? "" : v.eta < 90 ? K.texts.t("waiting.eta_s", { s: Math.ceil(v.eta) }) : K.texts.t("waiting.eta_min", { m: Math.ceil(v.eta / 60) });
  setQr(K, "w-qrbox", "w-qr", job);
}

export function renderResult(K, job) {
  const box = $("r-media");
  const out = (job.outputs || [])[0];
  let el;
  if (!out) {
    el = document.createElement("p");
    el.className = "text-result";
  } else if (out.type === "video") {
    el = document.createElement("video");
    Object.assign(el, { autoplay: true, loop: true, muted: true, playsInline: true, src: localPath(out.url) });
  } else if (out.type === "audio") {
    el = document.createElement("audio");
    Object.assign(el, { autoplay: true, controls: true, src: localPath(out.url) });
  } else if (out.type === "text") {
    el = document.createElement("p");
    el.className = "text-result";
    el.textContent = out.text || "";
  } else {
    el = document.createElement("img");
    el.alt = "";
    el.src = localPath(out.url);
  }
  const key = job.id + ":" + (job.outputs || []).length;
  if (box.dataset.job !== key) { box.replaceChildren(el); box.dataset.job = key; }
  setQr(K, "r-qrbox", "r-qr", job);
  $("r-print").hidden = !K.settings.print || !out || out.type !== "image";
  printerNote(K);
}

export function printerNote(K) {
  const p = K.state.printer;
  const note = $("r-note");
  if (!K.settings.print || !p || p.state === "ok") { if (note.dataset.kind === "printer") note.hidden = true; return; }
  const detail = String(p.detail || "");
  const key = /media|paper/.test(detail) ? "printer.paper" : p.state === "paused" ? "printer.paused" : "printer.down";
  note.textContent = K.texts.t(key);
  note.dataset.kind = "printer";
  note.hidden = false;
}

export function renderTray(K, openJob) {
  const tray = $("tray");
  const items = K.jobs.entries().filter((e) => e.id !== K.current && e.job && (!isFinal(e.job) || (e.job.state === "done" && !e.seen)));
  tray.hidden = !items.length || K.screen === "capture";
  const chips = items.map((e) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "chip" + (e.job.state === "done" ? " ready" : "");
    const v = guestView(e.job, K.state);
    const p = K.profiles.find((x) => x.name === e.job.profile);
    b.textContent = (p ? profileLabel(p) : e.job.profile) + " · " + (e.job.state === "done" ? K.texts.t("tray.ready") : v.progress !== null && v.progress !== undefined ? v.progress + " %" : K.texts.t("stage." + (v.stage || "queued")));
    b.addEventListener("click", (ev) => { ev.stopPropagation(); openJob(e.id); });
    return b;
  });
  const label = document.createElement("span");
  label.className = "tray-title";
  label.textContent = K.texts.t("tray.title");
  tray.replaceChildren(label, ...chips);
}

