// The share page on a guest's phone: "still working" (polling every few seconds), then the result.

import { Texts, getJSON } from "/kiosk/api.js";

const $ = (id) => document.getElementById(id);
const token = location.pathname.split("/")[2] || "";
let texts = null;
let last = null;
let gone = null;

function render() {
  texts.apply(document);
  const t = (k, p) => texts.t(k, p);
  if (gone) {
    document.body.classList.add("gone");
    $("status").textContent = t(gone === 410 ? "share.expired" : "share.expired");
    $("progress").hidden = true;
    return;
  }
  const j = last;
  if (!j) return;
  if (j.state === "done") {
    $("status").textContent = t("share.ready");
    $("progress").hidden = true;
    $("detail").textContent = "";
    const media = $("media");
    if (!media.childElementCount) {
      const out = j.outputs[0] || { type: "text", text: "" };
      let el;
      if (out.type === "video") { el = document.createElement("video"); Object.assign(el, { controls: true, playsInline: true, loop: true, muted: true, autoplay: true, src: out.url }); }
      else if (out.type === "audio") { el = document.createElement("audio"); Object.assign(el, { controls: true, src: out.url }); }
      else if (out.type === "text" || !out.url) { el = document.createElement("p"); el.textContent = out.text || ""; }
      else { el = document.createElement("img"); el.alt = ""; el.src = out.url; $("save").hidden = false; }
      media.append(el);
    }
  } else if (["failed", "expired", "cancelled"].includes(j.state)) {
    $("status").textContent = t("share.failed");
    $("progress").hidden = true;
  } else {
    $("status").textContent = t("share.working");
    $("progress").hidden = false;
    const bar = $("bar");
    const pct = typeof j.progress === "number" ? j.progress : null;
    bar.classList.toggle("unknown", pct === null);
    bar.style.width = pct === null ? "" : pct + "%";
    const parts = [];
    if (j.waiting === "network") parts.push(t("share.waiting_offline"));
    else if (j.stage) parts.push(t("stage." + j.stage) + (pct === null ? "" : ` · ${pct} %`));
    if (typeof j.queue_position === "number" && j.queue_position > 0) parts.push(t("waiting.ahead", { n: j.queue_position }));
    $("detail").textContent = parts.join(" · ");
  }
}

async function poll() {
  try {
    last = await getJSON(`/share/${token}/job.json`);
  } catch (e) {
    if (e.status === 404 || e.status === 410) { gone = e.status; render(); return; }
  }
  render();
  if (!last || !["done", "failed", "expired", "cancelled"].includes(last.state)) setTimeout(poll, 3000);
}

async function boot() {
  const settings = await getJSON("/kiosk/settings.json");
  texts = new Texts(settings);
  const phone = (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : null;
  if (phone && settings.languages.includes(phone)) texts.lang = phone;
  const btn = $("lang");
  btn.hidden = !settings.language_switch;
  const switchText = () => { btn.textContent = texts.t("lang.switch"); };
  btn.addEventListener("click", () => {
    texts.lang = settings.languages.find((l) => l !== texts.lang) || texts.lang;
    switchText();
    render();
  });
  switchText();
  await poll();
  document.body.dataset.ready = "1";
}

boot();
