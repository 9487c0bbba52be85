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

// Why no photo can be taken now (null: one can).
export function blocked(K) {
  const st = K.state || {};
  if (st.mode === "disk_full") return "disk";
  if (st.camera && ["failed", "retrying"].includes(st.camera.state)) return "camera";
  // a platform refused its key: every photo would fail. (A mode "error" from one failed job is not a reason to
  // turn the next guest away: that guest's photo may well work.)
  if (Object.values(st.platforms || {}).includes("key refused")) return "out";
  if (st.mode === "starting") return "busy";
  return null;
}

// Out of order: the camera is down, the storage is full, a platform refused the key. The
// attract screen asks for staff instead of inviting guests, and comes back by itself when the state does.
function outOfOrder(K) {
  const why = blocked(K);
  return why === "busy" ? null : why;
}

export function renderAttract(K) {
  const why = outOfOrder(K);
  document.body.dataset.out = why || "";
  $("a-out").hidden = !why;
  document.querySelector("#s-attract .attract-text").hidden = !!why;
  $("slide").classList.toggle("dim", !!why);
  if (!why) return;
  $("a-out-title").textContent = K.texts.t(`error.${why}.title`);
  $("a-out-body").textContent = K.texts.t(`error.${why}.body`);
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
  $("w-ahead").textContent = v.ahead ? K.texts.n("waiting.ahead", v.ahead, { n: v.ahead }) : "";
  // no time while the photo waits for the network, or sits in our own line with nothing to estimate from
  const eta = v.kind === "offline" || (v.stage === "queued" && v.ahead === null) ? null : v.eta;
  const s = eta && Math.ceil(eta);
  const m = eta && Math.ceil(eta / 60);
  $("w-eta").textContent = !eta ? "" : eta < 90 ? K.texts.n("waiting.eta_s", s, { s }) : K.texts.n("waiting.eta_min", m, { m });
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
    Object.assign(el, { autoplay: true, loop: true, muted: true, playsInline: true });
    // a codec this screen lacks, or a broken file: say so, never a blank panel
    el.addEventListener("error", () => { if (el.isConnected) el.replaceWith(videoFallback(K, job)); });
    el.src = localPath(out.url);
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

function videoFallback(K, job) {
  const div = document.createElement("div");
  div.className = "video-fallback";
  const img = document.createElement("img");
  img.alt = "";
  img.onerror = () => img.remove(); // the photo is gone (retention): the words alone
  img.src = `/results/${job.id}/capture.jpg`;
  const p = document.createElement("p");
  p.textContent = K.texts.t(K.settings.share && sharePath(job) ? "video.fallback" : "video.fallback_staff");
  div.append(img, p);
  return div;
}

function printerKey(p) {
  const detail = String((p && p.detail) || "");
  return /media|paper/.test(detail) ? "printer.paper" : p && p.state === "paused" ? "printer.paused" : "printer.down";
}

// What the guest's own print is doing, in their words (see print.js for the states).
function printKey(rec, printer) {
  switch (rec.state) {
    case "posting": case "queued": return ["print.queued", "wait"];
    case "sent": return ["print.sent", "wait"];
    case "printing": return ["print.printing", "wait"];
    case "printed": return ["print.printed", "ok"];
    case "held": return [/media|paper/.test(`${rec.detail || ""} ${(printer && printer.detail) || ""}`) ? "print.held_paper" : "print.held_paused", "bad"];
    case "refused": return rec.why === "printer" ? [printerKey(printer), "bad"] : [rec.why, rec.why === "print.cooldown" ? "wait" : "bad"];
    default: return ["print.failed", "bad"];
  }
}

// The note under the QR code: the guest's print when there is one, else the printer's trouble (if printing is on).
export function printerNote(K) {
  const p = K.state.printer;
  const note = $("r-note");
  const rec = K.prints ? K.prints.get(K.current) : null;
  $("r-print").disabled = !!(K.prints && K.prints.busy(K.current));
  let key = null;
  let kind = "printer";
  if (rec) [key, kind] = printKey(rec, p);
  else if (K.settings.print && p && !["ok", "off"].includes(p.state)) key = printerKey(p);
  note.hidden = !key;
  if (!key) return;
  note.textContent = K.texts.t(key);
  note.dataset.kind = kind;
}

export function renderTray(K, openJob) {
  const tray = $("tray");
  const keepMs = K.settings.result_timeout_s * 1000;
  K.jobs.prune(keepMs, K.current);
  // what prune left: jobs still going, and results not yet collected whose time is not up
  const items = K.jobs.entries().filter((e) => e.id !== K.current && e.job && !e.left && (!isFinal(e.job) || e.job.state === "done"));
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
  const allReady = items.length && items.every((e) => e.job.state === "done");
  label.textContent = K.texts.t(allReady ? "tray.title_ready" : "tray.title");
  tray.replaceChildren(label, ...chips);
  // a ready chip goes away by itself when its time is up
  clearTimeout(K.trayTimer);
  const ends = items.filter((e) => e.doneAt).map((e) => e.doneAt + keepMs - Date.now());
  if (ends.length) K.trayTimer = setTimeout(() => renderTray(K, openJob), Math.max(250, Math.min(...ends) + 50));
}
