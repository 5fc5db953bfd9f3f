// Atelier Studio page: plain JavaScript over the REST API (schema: /openapi.json). No external assets.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { images: [], methods: {}, content: null, styles: [], mask: null, job: null, result: null,
                round: null, polling: {} };

async function api(path, options = {}) {
  const r = await fetch(path, options);
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) {
    let msg = body && body.detail;
    if (Array.isArray(msg)) msg = msg.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`).join("; ");
    throw new Error(msg || `${r.status} ${r.statusText}`);
  }
  return body;
}
const postJSON = (path, data) => api(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(data) });
function setStatus(text, error = false) { $("status").textContent = text; $("status").classList.toggle("error", error); }

// ---------------------------------------------------------------- images
async function loadImages() {
  state.images = await api("/api/images");
  if (!state.content) state.content = (state.images.find((i) => i.kind === "content") || {}).id || null;
  if (!state.styles.length) { const s = state.images.find((i) => i.kind === "style"); if (s) state.styles = [s.id]; }
  renderThumbs();
}
function renderThumbs() {
  const fill = (el, kind, selected, onClick) => {
    el.innerHTML = "";
    for (const im of state.images.filter((i) => i.kind === kind)) {
      const t = document.createElement("img");
      t.src = im.url; t.title = im.name; t.alt = im.name; t.dataset.id = im.id;
      if (selected(im.id)) t.classList.add("selected");
      t.onclick = () => onClick(im.id);
      el.appendChild(t);
    }
  };
  fill($("content-list"), "content", (id) => id === state.content, (id) => { state.content = id; changed(true); });
  fill($("style-list"), "style", (id) => state.styles.includes(id), (id) => {
    if (state.styles.includes(id)) { if (state.styles.length > 1) state.styles = state.styles.filter((s) => s !== id); }
    else state.styles = [...state.styles, id].slice(-4);
    changed(true);
  });
  const c = state.images.find((i) => i.id === state.content);
  if (c && !$("before").src.endsWith(c.url)) { $("before").src = c.url; $("after").removeAttribute("src"); }
}
async function upload(file, kind) {
  const form = new FormData(); form.append("file", file); form.append("kind", kind);
  setStatus(`uploading ${file.name}…`);
  try {
    const im = await api("/api/images", { method: "POST", body: form });
    state.images.unshift(im);
    setStatus(`uploaded ${im.name} (${im.width}×${im.height})`);
    return im;
  } catch (e) { setStatus(e.message, true); return null; }
}
$("content-file").onchange = async (ev) => {
  const im = ev.target.files[0] && await upload(ev.target.files[0], "content");
  if (im) { state.content = im.id; changed(true); } ev.target.value = "";
};
$("style-file").onchange = async (ev) => {
  const added = [];
  for (const f of ev.target.files) { const im = await upload(f, "style"); if (im) added.push(im.id); }
  if (added.length) { state.styles = [...state.styles, ...added].slice(-4); changed(true); } ev.target.value = "";
};

// ---------------------------------------------------------------- methods and form
async function loadMethods() {
  const list = await api("/api/methods");
  const sel = $("method"); sel.innerHTML = "";
  for (const m of list) {
    state.methods[m.name] = m;
    const o = document.createElement("option"); o.value = m.name; o.textContent = m.label; sel.appendChild(o);
  }
  // the first fast method with style images (AdaIN among the built-ins) starts selected
  const first = list.find((m) => m.fast && m.styles === "images") || list[0];
  if (first) sel.value = first.name;
}
function method() { return state.methods[$("method").value] || { name: "", fast: false, styles: "images", family: "" }; }
const optimizing = (m) => m.family === "optimization";
function updateVisibility() {
  const m = method();
  document.querySelectorAll(".gatys-only").forEach((e) => e.classList.toggle("hidden", !optimizing(m)));
  const builtin = m.styles === "builtin" && (m.builtin_styles || []).length > 1;
  $("builtin-row").classList.toggle("hidden", !builtin);
  if (builtin && $("builtin-style").dataset.model !== m.name) {
    $("builtin-style").innerHTML = m.builtin_styles.map((s, i) => `<option value="${i}">${s.replace(/\.\w+$/, "")}</option>`).join("");
    $("builtin-style").dataset.model = m.name;
  }
  const masked = state.mask && m.masks;
  $("blend-row").classList.toggle("hidden", !(m.styles === "images" && state.styles.length === 2) || !!masked);
  $("mask-row").classList.toggle("hidden", !(m.masks && state.styles.length === 2));
  $("style-list").style.opacity = m.styles === "builtin" ? 0.4 : 1;
}
for (const id of ["strength", "style-scale", "size", "iterations", "blend"]) {
  $(id).addEventListener("input", () => { $(`${id}-out`).textContent = $(id).value; changed(false); });
}
for (const id of ["preserve-color", "builtin-style"]) $(id).addEventListener("change", () => changed(true));
$("method").addEventListener("change", () => {
  // Gatys: strength 0.5 is its default style weight (10); the one-pass methods start at full style
  const gatys = optimizing(method());
  if (gatys !== optimizing(state.methods[state.lastMethod] || {})) {
    $("strength").value = gatys ? 0.5 : 1; $("strength-out").textContent = $("strength").value;
  }
  state.lastMethod = $("method").value; changed(true);
});

function params() {
  const m = method();
  const p = { method: m.name, content: state.content, styles: m.styles === "images" ? state.styles : [],
              size: +$("size").value, strength: +$("strength").value, style_scale: +$("style-scale").value,
              preserve_color: $("preserve-color").value, iterations: +$("iterations").value };
  const masked = state.mask && m.masks && state.styles.length === 2;
  if (m.styles === "images" && state.styles.length === 2 && !masked) { const b = +$("blend").value; p.blend = [b, 1 - b]; }
  if (m.styles === "builtin" && (m.builtin_styles || []).length > 1) {
    p.blend = m.builtin_styles.map((_, i) => (i === +$("builtin-style").value ? 1 : 0));
  }
  if (masked) p.mask = state.mask;
  return p;
}
let debounce = null;
function changed(now) {
  renderThumbs(); updateVisibility();
  if (!$("live").checked || !method().fast || !state.result) return;
  clearTimeout(debounce);
  debounce = setTimeout(run, now ? 0 : 450);
}

// ---------------------------------------------------------------- jobs
async function run() {
  if (!state.content) { setStatus("upload or pick a photo first", true); return; }
  if (state.job && method().fast) { api(`/api/jobs/${state.job}/cancel`, { method: "POST" }).catch(() => {}); }
  try { follow(await postJSON("/api/jobs", params())); }
  catch (e) { setStatus(e.message, true); }
}
async function follow(job) {
  state.job = job.id; $("cancel").disabled = false; setStatus(`${job.params.method}: queued`);
  let seen = 0;
  while (state.job === job.id) {
    let s;
    try { s = await api(`/api/jobs/${job.id}`); } catch (e) { setStatus(e.message, true); break; }
    $("progress-bar").style.width = `${Math.round(100 * s.progress)}%`;
    if (s.preview_version > seen && s.status === "running") {
      seen = s.preview_version; $("after").src = `/api/jobs/${job.id}/preview?v=${seen}`;
    }
    if (s.status === "done") {
      $("after").src = s.result_url; state.result = job.id;
      $("download").href = `${s.result_url}?download=true`; $("download").classList.remove("hidden");
      setStatus(`done: ${s.params.method}, ${s.params.size}px`); loadHistory(); break;
    }
    if (s.status === "failed") { setStatus(s.error || "failed", true); break; }
    if (s.status === "cancelled") { setStatus("cancelled"); break; }
    setStatus(`${s.params.method}: ${s.message}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  if (state.job === job.id) { state.job = null; $("cancel").disabled = true; }
}
$("run").onclick = run;
$("cancel").onclick = () => state.job && api(`/api/jobs/${state.job}/cancel`, { method: "POST" });

// ---------------------------------------------------------------- before/after
function fitAfter() { $("after").style.width = `${$("before").clientWidth}px`; $("after").style.height = `${$("before").clientHeight}px`; }
$("before").onload = fitAfter; window.addEventListener("resize", fitAfter);
$("compare-slider").oninput = () => { $("after-clip").style.width = `${$("compare-slider").value}%`; };

// ---------------------------------------------------------------- mask: upload or paint
$("mask-file").onchange = async (ev) => {
  const im = ev.target.files[0] && await upload(ev.target.files[0], "mask");
  if (im) { state.mask = im.id; $("mask-note").textContent = "mask set"; changed(true); } ev.target.value = "";
};
$("mask-clear").onclick = () => { state.mask = null; $("mask-note").textContent = ""; changed(true); };
$("mask-brush").onclick = () => {
  const c = $("mask-canvas"), b = $("before");
  c.width = b.naturalWidth; c.height = b.naturalHeight;
  const g = c.getContext("2d"); g.fillStyle = "black"; g.fillRect(0, 0, c.width, c.height);
  c.classList.remove("hidden"); $("mask-tools").classList.remove("hidden"); $("compare-slider").classList.add("hidden");
  let down = false;
  const paint = (ev) => {
    if (!down) return;
    const r = c.getBoundingClientRect(), k = c.width / r.width;
    g.fillStyle = "white"; g.beginPath();
    g.arc((ev.clientX - r.left) * k, (ev.clientY - r.top) * k, 0.06 * c.width, 0, 2 * Math.PI); g.fill();
  };
  c.onpointerdown = (ev) => { down = true; paint(ev); }; c.onpointermove = paint; window.onpointerup = () => { down = false; };
};
$("mask-done").onclick = () => {
  $("mask-canvas").toBlob(async (blob) => {
    const im = await upload(new File([blob], "painted-mask.png", { type: "image/png" }), "mask");
    $("mask-canvas").classList.add("hidden"); $("mask-tools").classList.add("hidden"); $("compare-slider").classList.remove("hidden");
    if (im) { state.mask = im.id; $("mask-note").textContent = "painted mask set"; changed(true); }
  }, "image/png");
};

// ---------------------------------------------------------------- history
async function loadHistory() {
  const items = await api("/api/history");
  const el = $("history"); el.innerHTML = "";
  for (const h of items) {
    const p = h.params, card = document.createElement("div");
    card.className = "card"; card.dataset.id = h.id;
    card.innerHTML = `<img src="${h.result_url}" alt="result ${h.id}"><div class="meta">${p.method} · strength ${p.strength}` +
      ` · scale ${p.style_scale} · ${p.size}px · colours ${p.preserve_color}${h.seconds ? ` · ${h.seconds.toFixed(1)} s` : ""}</div>` +
      `<div class="buttons"><button class="reproduce">Reproduce</button><a class="button" href="${h.result_url}?download=true" download>Download</a></div>`;
    card.querySelector(".reproduce").onclick = () => reproduce(h);
    el.appendChild(card);
  }
}
async function reproduce(h) {
  const p = h.params;
  $("method").value = p.method; $("strength").value = p.strength; $("style-scale").value = p.style_scale;
  $("size").value = p.size; $("iterations").value = p.iterations; $("preserve-color").value = p.preserve_color;
  if (p.blend && p.blend.length === 2) $("blend").value = p.blend[0];
  for (const id of ["strength", "style-scale", "size", "iterations", "blend"]) $(`${id}-out`).textContent = $(id).value;
  state.content = p.content; if (p.styles.length) state.styles = p.styles; state.mask = p.mask || null;
  showTab("studio"); renderThumbs(); updateVisibility();
  try { follow(await api(`/api/jobs/${h.id}/reproduce`, { method: "POST" })); } catch (e) { setStatus(e.message, true); }
}

// ---------------------------------------------------------------- Explore
const profile = () => $("profile").value.trim() || "default";
async function exploreSummary() {
  try {
    const s = await api(`/api/explore/${encodeURIComponent(profile())}`);
    const b = s.best;
    $("explore-summary").textContent = `${s.picks} pick(s) in ${s.rounds} round(s)` + (b ? ` · favourite so far: ${b.method}, strength ` +
      `${b.alpha}, scale ${b.style_scale}, colours ${b.preserve_color}` : "");
  } catch (e) { $("explore-summary").textContent = e.message; }
}
async function newRound() {
  if (!state.content || !state.styles.length) { setStatus("pick a photo and a painting first", true); return; }
  $("new-round").disabled = true;
  let r;
  try { r = await postJSON(`/api/explore/${encodeURIComponent(profile())}/rounds`,
                           { content: state.content, styles: state.styles.slice(0, 2), size: Math.min(256, +$("size").value) }); }
  catch (e) { $("explore-summary").textContent = e.message; $("new-round").disabled = false; return; }
  state.round = r;
  const el = $("variants"); el.innerHTML = "";
  r.jobs.forEach((job, i) => {
    const s = r.settings[i], card = document.createElement("div");
    card.className = "variant"; card.dataset.index = i;
    card.innerHTML = `<img alt="variant ${i + 1}"><div class="meta">${s.method} · strength ${s.alpha.toFixed(2)} · scale ` +
      `${s.style_scale.toFixed(2)} · colours ${s.preserve_color}${state.styles.length > 1 ? ` · blend ${s.blend.toFixed(2)}` : ""}` +
      `</div><button class="pick" disabled>Pick this one</button>`;
    card.querySelector(".pick").onclick = () => pick(i);
    el.appendChild(card);
    (async () => {
      while (true) {
        const st = await api(`/api/jobs/${job.id}`);
        if (st.status === "done") { card.querySelector("img").src = st.result_url; card.querySelector(".pick").disabled = false; break; }
        if (st.status === "failed" || st.status === "cancelled") { card.querySelector(".meta").textContent += ` (${st.error || st.status})`; break; }
        await new Promise((res) => setTimeout(res, 400));
      }
    })();
  });
  $("pick-none").disabled = false; $("new-round").disabled = false;
}
async function pick(i) {
  if (!state.round) return;
  const r = state.round; state.round = null;
  document.querySelectorAll(".variant").forEach((v) => v.classList.toggle("picked", +v.dataset.index === i));
  document.querySelectorAll(".pick").forEach((b) => { b.disabled = true; }); $("pick-none").disabled = true;
  await postJSON(`/api/explore/${encodeURIComponent(profile())}/rounds/${r.id}/pick`, { picked: i });
  await exploreSummary();
}
$("new-round").onclick = newRound;
$("pick-none").onclick = () => pick(null);
$("profile").onchange = exploreSummary;
$("save-preset").onclick = async () => {
  try {
    const r = await postJSON(`/api/explore/${encodeURIComponent(profile())}/preset`, { name: $("preset-name").value.trim() });
    $("preset-result").textContent = `saved; use it with: ${r.command}`;
  } catch (e) { $("preset-result").textContent = e.message; }
};

// ---------------------------------------------------------------- tabs and start
function showTab(name) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.tab === name));
  document.querySelectorAll(".pane").forEach((p) => p.classList.toggle("hidden", p.id !== `pane-${name}`));
  if (name === "history") loadHistory();
  if (name === "explore") exploreSummary();
}
document.querySelectorAll(".tab").forEach((t) => { t.onclick = () => showTab(t.dataset.tab); });
(async () => {
  try { await loadMethods(); await loadImages(); updateVisibility(); loadHistory(); }
  catch (e) { setStatus(`cannot reach the studio server: ${e.message}`, true); }
})();
