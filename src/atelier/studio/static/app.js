// Atelier Studio page: plain JavaScript over the REST API (schema: /openapi.json). No external assets.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { images: [], methods: {}, content: null, styles: [], mask: null, job: null, result: null,
                round: null, polling: {},
                // every job this page started and has not seen end, per view: Cancel reaches all of them
                studioJobs: new Set(), exploreJobs: new Set() };

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
      const box = document.createElement("span"), t = document.createElement("img");
      box.className = "thumb";
      t.src = im.url; t.title = im.name; t.alt = im.name; t.dataset.id = im.id;
      if (selected(im.id)) t.classList.add("selected");
      t.onclick = () => onClick(im.id);
      box.appendChild(t);
      if (!im.id.startsWith("bundled-")) {  // uploads can be deleted; the bundled images stay
        const x = document.createElement("button");
        x.className = "del"; x.textContent = "×"; x.title = `delete ${im.name}`; x.setAttribute("aria-label", x.title);
        x.onclick = () => deleteImage(im);
        box.appendChild(x);
      }
      el.appendChild(box);
    }
  };
  fill($("content-list"), "content", (id) => id === state.content, (id) => { state.content = id; changed(true); });
  fill($("style-list"), "style", (id) => state.styles.includes(id), (id) => {
    if (!$("style-add").checked) state.styles = [id];  // a click picks this painting alone
    else if (state.styles.includes(id)) { if (state.styles.length > 1) state.styles = state.styles.filter((s) => s !== id); }
    else state.styles = [...state.styles, id].slice(-4);
    changed(true);
  });
  const c = state.images.find((i) => i.id === state.content);
  if (c && !$("before").src.endsWith(c.url)) { $("before").src = c.url; $("after").removeAttribute("src"); }
}
async function deleteImage(im) {
  try { await api(`/api/images/${im.id}`, { method: "DELETE" }); } catch (e) { setStatus(e.message, true); return; }
  state.images = state.images.filter((i) => i.id !== im.id);
  if (state.content === im.id) state.content = (state.images.find((i) => i.kind === "content") || {}).id || null;
  state.styles = state.styles.filter((s) => s !== im.id);
  if (!state.styles.length) { const s = state.images.find((i) => i.kind === "style"); if (s) state.styles = [s.id]; }
  if (state.mask === im.id) { state.mask = null; $("mask-note").textContent = ""; }
  setStatus(`deleted ${im.name}`); changed(false);
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
  // a new painting replaces the selection, unless the user chose to add it to the blend
  if (added.length) { state.styles = ($("style-add").checked ? [...state.styles, ...added] : added).slice(-4); changed(true); }
  ev.target.value = "";
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
// a region mask: every method (issue 28): one style (the photo where black), two styles (the
// first where white), or a feed-forward model's own style
const maskFits = (m) => m.styles === "builtin" || state.styles.length === 1 || state.styles.length === 2;
function updateVisibility() {
  const m = method();
  document.querySelectorAll(".gatys-only").forEach((e) => e.classList.toggle("hidden", !optimizing(m)));
  const builtin = m.styles === "builtin" && (m.builtin_styles || []).length > 1;
  $("builtin-row").classList.toggle("hidden", !builtin);
  if (builtin && $("builtin-style").dataset.model !== m.name) {
    $("builtin-style").innerHTML = m.builtin_styles.map((s, i) => `<option value="${i}">${s.replace(/\.\w+$/, "")}</option>`).join("");
    $("builtin-style").dataset.model = m.name;
  }
  const masked = state.mask && maskFits(m);
  $("blend-row").classList.toggle("hidden", !(m.styles === "images" && state.styles.length === 2) || !!masked);
  $("mask-row").classList.toggle("hidden", !maskFits(m));
  $("feather-row").classList.toggle("hidden", !masked);
  $("export-row").classList.toggle("hidden", !m.tiled);
  $("style-list").style.opacity = m.styles === "builtin" ? 0.4 : 1;
}
for (const id of ["strength", "style-scale", "size", "iterations", "blend", "feather"]) {
  $(id).addEventListener("input", () => { $(`${id}-out`).textContent = $(id).value; changed(false); });
}
for (const id of ["preserve-color", "builtin-style", "tileable"]) $(id).addEventListener("change", () => changed(true));
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
  const masked = state.mask && maskFits(m);
  if (m.styles === "images" && state.styles.length === 2 && !masked) { const b = +$("blend").value; p.blend = [b, 1 - b]; }
  if (m.styles === "builtin" && (m.builtin_styles || []).length > 1) {
    p.blend = m.builtin_styles.map((_, i) => (i === +$("builtin-style").value ? 1 : 0));
  }
  if (masked) p.mask = state.mask;
  if (masked && +$("feather").value > 0) p.feather = +$("feather").value;
  if ($("tileable").checked) p.tileable = true;
  return p;
}
const imageName = (id) => (state.images.find((i) => i.id === id) || {}).name || id;
// which paintings (and weights) a job with these parameters uses, in words
function uses(p) {
  const m = state.methods[p.method] || {};
  if (m.styles === "builtin") {
    const names = (m.builtin_styles || []).map((s) => s.replace(/\.\w+$/, ""));
    const picked = p.blend ? names.filter((_, i) => p.blend[i] > 0) : names;
    return `${m.label || p.method}${picked.length ? ` (${picked.join(" + ")})` : ""}`;
  }
  if (!p.styles || !p.styles.length) return "no painting";
  if (p.mask) return `${imageName(p.styles[0])} (white in the mask) + ${p.styles[1] ? imageName(p.styles[1]) : "the photo"} (the rest)`;
  const w = p.blend || p.styles.map(() => 1), total = w.reduce((a, b) => a + b, 0) || 1;
  if (p.styles.length === 1) return imageName(p.styles[0]);
  return p.styles.map((s, i) => `${imageName(s)} ${Math.round((100 * w[i]) / total)}%`).join(" + ");
}
let debounce = null;
function changed(now) {
  renderThumbs(); updateVisibility();
  $("uses").textContent = state.content ? `uses ${uses(params())}` : "";
  if (!$("live").checked || !method().fast || !state.result) return;
  clearTimeout(debounce);
  debounce = setTimeout(run, now ? 0 : 450);
}

// ---------------------------------------------------------------- jobs
const cancelJob = (id) => api(`/api/jobs/${id}/cancel`, { method: "POST" }).catch(() => {});
function cancelAll(set) { for (const id of set) cancelJob(id); return set.size; }
function updateCancel() { $("cancel").disabled = !(state.studioJobs.size || state.exploreJobs.size); }
async function run() {
  if (!state.content) { setStatus("upload or pick a photo first", true); return; }
  // one run at a time in this view: a new Stylize stops the one before (queued or running)
  const stopped = cancelAll(state.studioJobs);
  try { follow(await postJSON("/api/jobs", params()), stopped); }
  catch (e) { setStatus(e.message, true); }
}
// issue 24: the same settings at print size (tiles where it would not fit), with progress and Cancel
$("export").onclick = async () => {
  if (!state.content) { setStatus("upload or pick a photo first", true); return; }
  const p = params(); delete p.mask; delete p.feather; delete p.tileable;
  try { follow(await postJSON("/api/jobs", { ...p, print_size: +$("print-size").value }), cancelAll(state.studioJobs)); }
  catch (e) { setStatus(e.message, true); }
};
async function follow(job, stopped = 0) {
  state.job = job.id; state.studioJobs.add(job.id); updateCancel();
  const before = stopped ? "previous run cancelled; " : "";
  setStatus(`${before}${job.params.method}: queued`);
  let seen = 0;
  while (true) {
    let s;
    try { s = await api(`/api/jobs/${job.id}`); } catch (e) { if (state.job === job.id) setStatus(e.message, true); break; }
    if (!["queued", "running"].includes(s.status)) state.studioJobs.delete(job.id);
    if (state.job !== job.id) {  // superseded: only watch it end, so that Cancel reaches it until then
      if (!state.studioJobs.has(job.id)) break;
      await new Promise((r) => setTimeout(r, 300)); continue;
    }
    $("progress-bar").style.width = `${Math.round(100 * s.progress)}%`;
    if (s.preview_version > seen && s.status === "running") {
      seen = s.preview_version; $("after").src = `/api/jobs/${job.id}/preview?v=${seen}`;
    }
    if (s.status === "done") {
      $("after").src = s.result_url; state.result = job.id;
      $("download").href = `${s.result_url}?download=true`; $("download").classList.remove("hidden");
      $("download-signed").href = `${s.result_url}?download=true&credentials=true`; $("download-signed").classList.remove("hidden");
      setStatus(`done: ${s.params.method}, ${s.params.print_size || s.params.size}px, ${uses(s.params)}`); loadHistory(); break;
    }
    if (s.status === "failed") { setStatus(s.error || "failed", true); break; }
    if (s.status === "cancelled") { setStatus("cancelled"); break; }
    setStatus(`${before}${s.params.method}: ${s.message} (${uses(s.params)})`);
    await new Promise((r) => setTimeout(r, 300));
  }
  state.studioJobs.delete(job.id);
  if (state.job === job.id) state.job = null;
  updateCancel(); refreshQueue();
}
$("run").onclick = () => {  // on a phone the picture is below the controls: show it
  if (window.matchMedia("(max-width: 760px)").matches) $("compare").scrollIntoView({ behavior: "smooth" });
  run();
};
$("cancel").onclick = () => {  // every job this page started and has not seen end
  const n = cancelAll(state.studioJobs), m = cancelAll(state.exploreJobs);
  setStatus(n ? "cancelling…" : `cancelled ${m} Explore variant(s)`);
};

// ---------------------------------------------------------------- the header's queue indicator
async function refreshQueue() {
  try {
    const q = await api("/api/queue");
    $("queue-note").textContent = q.running || q.queued ? `queue: ${q.running} running, ${q.queued} waiting` : "queue: idle";
  } catch (e) { $("queue-note").textContent = ""; }
}
setInterval(() => { if (!document.hidden) refreshQueue(); }, 2000);

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
    const what = p.kind === "paint"  // a Paint tab job: strokes, painter and brush
      ? `painted: ${p.strokes} strokes · ${p.method} · ${p.brush} · ${p.size}px`
      : `${p.method} · strength ${p.strength} · scale ${p.style_scale} · ${p.size}px · colours ${p.preserve_color}`;
    card.innerHTML = `<img src="${h.result_url}" alt="result ${h.id}"><div class="meta"><span class="uses"></span><br>` +
      `${what}${h.seconds ? ` · ${h.seconds.toFixed(1)} s` : ""}</div>` +
      `<div class="buttons"><button class="reproduce">Reproduce</button><a class="button" href="${h.result_url}?download=true" download>Download</a>` +
      `<button class="delete">Delete</button></div>`;
    card.querySelector(".uses").textContent = p.kind === "paint" ? imageName(p.content) : uses(p);  // as text (names come from uploads)
    card.querySelector(".reproduce").onclick = () => reproduce(h);
    card.querySelector(".delete").onclick = async () => {
      try { await api(`/api/jobs/${h.id}`, { method: "DELETE" }); card.remove(); } catch (e) { setStatus(e.message, true); }
    };
    el.appendChild(card);
  }
}
async function reproduce(h) {
  const p = h.params;
  if (p.kind === "paint") {  // back to the Paint tab with its settings, and paint again
    $("paint-strokes").value = p.strokes; $("paint-strokes-out").textContent = p.strokes;
    $("paint-method").value = p.method; $("paint-brush").value = p.brush; $("paint-style").checked = p.styles.length > 0;
    state.content = p.content; if (p.styles.length) state.styles = p.styles;
    showTab("paint"); renderThumbs(); $("paint-run").click(); return;
  }
  $("method").value = p.method; $("strength").value = p.strength; $("style-scale").value = p.style_scale;
  $("size").value = p.size; $("iterations").value = p.iterations; $("preserve-color").value = p.preserve_color;
  if (p.blend && p.blend.length === 2) $("blend").value = p.blend[0];
  for (const id of ["strength", "style-scale", "size", "iterations", "blend"]) $(`${id}-out`).textContent = $(id).value;
  state.content = p.content; if (p.styles.length) state.styles = p.styles; state.mask = p.mask || null;
  showTab("studio"); renderThumbs(); updateVisibility();
  const stopped = cancelAll(state.studioJobs);  // one run at a time here too
  try { follow(await api(`/api/jobs/${h.id}/reproduce`, { method: "POST" }), stopped); } catch (e) { setStatus(e.message, true); }
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
  cancelAll(state.exploreJobs);  // one round at a time: the variants still rendering for the last one stop
  let r;
  try { r = await postJSON(`/api/explore/${encodeURIComponent(profile())}/rounds`,
                           { content: state.content, styles: state.styles.slice(0, 2), size: Math.min(256, +$("size").value) }); }
  catch (e) { $("explore-summary").textContent = e.message; $("new-round").disabled = false; return; }
  state.round = r;
  const el = $("variants"); el.innerHTML = "";
  r.jobs.forEach((job, i) => {
    const s = r.settings[i], card = document.createElement("div");
    card.className = "variant"; card.dataset.index = i;
    card.innerHTML = `<div class="slot"><img alt="variant ${i + 1}"><span class="muted">waiting…</span></div>` +
      `<div class="meta">${s.method} · strength ${s.alpha.toFixed(2)} · scale ` +
      `${s.style_scale.toFixed(2)} · colours ${s.preserve_color}${state.styles.length > 1 ? ` · blend ${s.blend.toFixed(2)}` : ""}` +
      `</div><div class="buttons"><button class="pick" disabled>Pick this one</button>` +
      `<a class="button download hidden" download>Download</a></div>`;
    card.querySelector(".pick").onclick = () => pick(i);
    el.appendChild(card);
    state.exploreJobs.add(job.id); updateCancel();
    (async () => {
      const slot = card.querySelector(".slot span");
      while (true) {
        let st;
        try { st = await api(`/api/jobs/${job.id}`); } catch (e) { slot.textContent = e.message; break; }
        if (st.status === "done") {
          card.querySelector("img").src = st.result_url; slot.remove(); card.querySelector(".pick").disabled = false;
          const a = card.querySelector(".download"); a.href = `${st.result_url}?download=true`; a.classList.remove("hidden");
          break;
        }
        if (st.status === "failed" || st.status === "cancelled") { slot.textContent = st.error || st.status; break; }
        if (st.status === "running") slot.textContent = `rendering… ${Math.round(100 * st.progress)}%`;
        await new Promise((res) => setTimeout(res, 400));
      }
      state.exploreJobs.delete(job.id); updateCancel();
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

// ---------------------------------------------------------------- Paint (issue 27): brush strokes, the canvas live
const paintState = { job: null };
$("paint-strokes").addEventListener("input", () => { $("paint-strokes-out").textContent = $("paint-strokes").value; });
function paintStatus(text, error = false) { $("paint-status").textContent = text; $("paint-status").classList.toggle("error", error); }
$("paint-run").onclick = async () => {
  if (!state.content) { paintStatus("upload or pick a photo first", true); return; }
  if (paintState.job) cancelJob(paintState.job);  // one painting at a time in this view
  const body = { content: state.content, strokes: +$("paint-strokes").value, method: $("paint-method").value,
                 brush: $("paint-brush").value, size: 768 };
  if ($("paint-style").checked && state.styles.length) body.styles = [state.styles[0]];
  let job;
  try { job = await postJSON("/api/paint", body); } catch (e) { paintStatus(e.message, true); return; }
  paintState.job = job.id; $("paint-cancel").disabled = false; $("paint-download").classList.add("hidden");
  let seen = 0;
  while (paintState.job === job.id) {
    let s;
    try { s = await api(`/api/jobs/${job.id}`); } catch (e) { paintStatus(e.message, true); break; }
    $("paint-bar").style.width = `${Math.round(100 * s.progress)}%`;
    if (s.preview_version > seen && s.status === "running") {
      seen = s.preview_version; $("paint-canvas").src = `/api/jobs/${job.id}/preview?v=${seen}`;
    }
    if (s.status === "done") {
      $("paint-canvas").src = s.result_url;
      $("paint-download").href = `${s.result_url}?download=true`; $("paint-download").classList.remove("hidden");
      paintStatus(`done: ${s.params.strokes} strokes, ${s.params.method}, ${s.params.brush}`); loadHistory(); break;
    }
    if (s.status === "failed") { paintStatus(s.error || "failed", true); break; }
    if (s.status === "cancelled") { paintStatus("cancelled"); break; }
    paintStatus(`painting: ${s.message}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  if (paintState.job === job.id) { paintState.job = null; $("paint-cancel").disabled = true; }
  refreshQueue();
};
$("paint-cancel").onclick = () => { if (paintState.job) { cancelJob(paintState.job); paintStatus("cancelling…"); } };

// ---------------------------------------------------------------- tabs and start
function showTab(name) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.tab === name));
  document.querySelectorAll(".pane").forEach((p) => p.classList.toggle("hidden", p.id !== `pane-${name}`));
  if (name === "history") loadHistory();
  if (name === "explore") exploreSummary();
}
document.querySelectorAll(".tab").forEach((t) => { t.onclick = () => showTab(t.dataset.tab); });
(async () => {
  try { await loadMethods(); await loadImages(); changed(false); loadHistory(); refreshQueue(); }
  catch (e) { setStatus(`cannot reach the studio server: ${e.message}`, true); }
})();
