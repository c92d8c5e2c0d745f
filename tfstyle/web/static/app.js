// tfstyle's page: uploads, settings, one job at a time watched over server-sent events.
// Every URL is relative, so the page works under any path the server is mounted at.
"use strict";

const $ = (id) => document.getElementById(id);
const page = {
  config: null,
  photos: [],          // uploads: one image, several images, or one video
  styles: [],          // uploads, each with .weight
  job: null,           // the job shown
  source: null,        // its EventSource
  versions: {},        // image versions shown, by slot
};

// ----- small helpers

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function duration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m ? `${m} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : `the server answered ${response.status}`;
    throw new Error(message);
  }
  return body;
}

// ----- uploads

async function upload(files, role) {
  if (!files.length) return;
  showError("");
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const drop = $(role === "photo" ? "photo-drop" : "style-drop");
  drop.setAttribute("aria-busy", "true");
  try {
    const { uploads } = await api("api/uploads", { method: "POST", body: form });
    if (role === "photo") {
      const video = uploads.find((u) => u.kind === "video");
      page.photos = video ? [video] : uploads;
    } else {
      const paintings = uploads.filter((u) => u.kind === "image");
      if (paintings.length < uploads.length) showError("a painting must be an image, not a video");
      for (const u of paintings) page.styles.push({ ...u, weight: 1 });
      const max = page.config ? page.config.max_styles : 16;
      if (page.styles.length > max) {
        page.styles = page.styles.slice(-max);
        showError(max === 1 ? "this server runs one painting at a time: the latest is kept"
                            : `at most ${max} paintings: the latest are kept`);
      }
    }
  } catch (e) {
    showError(e.message);
  } finally {
    drop.removeAttribute("aria-busy");
    $(role === "photo" ? "photo-input" : "style-input").value = "";
    renderUploads();
  }
}

function thumb(u, onRemove, extra = []) {
  const remove = el("button", { type: "button", className: "remove", text: "×",
                                "aria-label": `Remove ${u.name}` });
  remove.addEventListener("click", onRemove);
  return el("li", { className: "thumb" }, [
    el("img", { src: u.thumb, alt: u.name }), remove,
    el("span", { className: "name", text: u.kind === "video" ? `${u.name} (video)` : u.name }),
    ...extra]);
}

function renderUploads() {
  const photos = $("photo-thumbs");
  photos.replaceChildren(...page.photos.map((u) => thumb(u, () => {
    page.photos = page.photos.filter((p) => p !== u);
    renderUploads();
  })));
  const blending = page.styles.length > 1;
  $("style-thumbs").replaceChildren(...page.styles.map((u, i) => {
    const extra = [];
    if (blending) {
      const id = `weight-${i}`;
      const range = el("input", { type: "range", id, min: "0", max: "1", step: "0.05",
                                  value: String(u.weight) });
      range.addEventListener("input", () => { u.weight = Number(range.value); });
      extra.push(el("label", { htmlFor: id, text: `Blend weight` }), range);
    }
    return thumb(u, () => {
      page.styles = page.styles.filter((s) => s !== u);
      renderUploads();
    }, extra);
  }));
  const video = page.photos.length === 1 && page.photos[0].kind === "video";
  $("video-fields").hidden = !video;
  if (video && page.config) {
    const frames = Math.min(page.photos[0].frames || page.config.max_frames, page.config.max_frames);
    $("frames").max = page.config.max_frames;
    $("frames").value = frames;
  }
  $("preview").disabled = video || page.photos.length > 1;
  $("run").textContent = video ? "Stylize the video" : page.photos.length > 1 ?
    `Stylize ${page.photos.length} photos` : "Stylize";
  if (!page.job && page.photos.length && page.photos[0].kind === "image") {
    showPicture(page.photos[0].thumb, page.photos[0].name);
  } else if (!page.job && !page.photos.length) {
    showPicture(null);
  }
}

function wireDrop(dropId, inputId, role) {
  const drop = $(dropId);
  const input = $(inputId);
  input.addEventListener("change", () => upload([...input.files], role));
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) {
    drop.addEventListener(kind, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    upload([...e.dataTransfer.files], role);
  });
}

// ----- settings

function numberOrNull(id) {
  const value = $(id).value.trim();
  return value === "" ? null : Number(value);
}

function settings() {
  const values = {
    style_strength: Number($("strength").value),
    size: numberOrNull("size"),
    preserve_colors: $("colors").value,
    steps: numberOrNull("steps"),
    seed: numberOrNull("seed"),
    init: $("init").value,
    style_scale: numberOrNull("style-scale"),
    style_loss: $("style-loss").value,
    tv_weight: numberOrNull("tv"),
  };
  if (page.styles.length > 1) values.style_blend_weights = page.styles.map((s) => s.weight);
  if (!$("video-fields").hidden) {
    values.frames = numberOrNull("frames");
    values.frame_steps = numberOrNull("frame-steps");
  }
  return values;
}

function applyConfig(config) {
  page.config = config;
  const d = config.defaults;
  $("engine").textContent = config.engine === "serving" ?
    `Runs on ${config.engine_text}` : `Runs here (${config.engine_text}), one job at a time`;
  $("strength").value = d.style_strength;
  $("size").value = Math.min(d.size, config.max_size);
  $("size").max = config.max_size;
  $("steps").value = d.steps;
  $("style-scale").value = d.style_scale;
  $("frame-steps").value = d.frame_steps;
  $("tv").placeholder = "100";
  $("init").replaceChildren(...config.choices.init.map((v) => el("option", { value: v, text: v })));
  $("init").value = d.init;
  $("style-loss").replaceChildren(...config.choices.style_loss.map((v) => el("option", { value: v, text: v })));
  $("style-loss").value = d.style_loss;
  if (config.max_styles === 1) $("style-sub").textContent = "One painting per job on this server.";
  showStrength();
  sizeNote();
}

function showStrength() { $("strength-out").textContent = Number($("strength").value).toFixed(2); }

function sizeNote() {
  const size = numberOrNull("size") || 0;
  const note = $("size-note");
  note.hidden = size <= 2048;
  note.textContent = "Print size: it runs in tiles that fit the server's memory, and takes a while.";
}

// ----- jobs

// fromStrip: the run was picked on the strength strip, which then stays in view.
async function start(strip, fromStrip = false) {
  showError("");
  if (!page.photos.length) return showError("Add a photo first.");
  if (!page.styles.length) return showError("Add a painting first.");
  const body = { contents: page.photos.map((u) => u.id), styles: page.styles.map((u) => u.id),
                 settings: settings(), strip };
  try {
    const job = await api("api/jobs", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!fromStrip) $("strip").hidden = true;
    watch(job);
  } catch (e) {
    showError(e.message);
  }
}

function watch(job) {
  if (page.source) page.source.close();
  page.job = job;
  page.versions = {};
  sessionStorage.setItem("tfstyle-job", job.id);
  $("download").hidden = true;
  $("command-box").hidden = true;
  render(job);
  const source = new EventSource(`api/jobs/${job.id}/events`);
  page.source = source;
  source.addEventListener("status", (event) => {
    const snapshot = JSON.parse(event.data);
    if (!page.job || snapshot.id !== page.job.id) return;
    page.job = snapshot;
    render(snapshot);
    if (["done", "stopped", "failed", "cancelled"].includes(snapshot.state)) {
      source.close();
      sessionStorage.removeItem("tfstyle-job");
      loadGallery();
    }
  });
}

const ORDINAL_ITEM = { video: "Frame", photos: "Photo", strip: "Preview" };

function statusText(job) {
  const p = job.progress;
  if (job.state === "queued") {
    return job.position <= 1 ? "Waiting: next in line" :
      `Waiting: ${job.position - 1} job${job.position > 2 ? "s" : ""} ahead`;
  }
  if (job.state !== "running") return job.message;
  const parts = [];
  if (p.items) {
    parts.push(`${ORDINAL_ITEM[job.kind] || "Item"} ${p.item}/${p.items}`);
    if (job.kind === "strip" && p.item_name) parts.push(p.item_name);
    if (p.item_eta != null) parts.push(`about ${duration(p.item_eta)} left`);
  }
  if (p.steps) {
    if (p.stages > 1) parts.push(`stage ${p.stage}/${p.stages}, ${p.size} px`);
    parts.push(`step ${p.step || 0}/${p.steps}`);
    if (p.tile) parts.push(`in ${p.tile} px tiles`);
    if (p.eta != null && !p.items) parts.push(`about ${duration(p.eta)} left`);
  } else if (p.phase) {
    parts.push(p.phase);
  }
  if (job.stopping) parts.push("stopping…");
  return parts.join(" · ") || "Starting";
}

function progressValue(job) {
  const p = job.progress;
  if (job.state !== "running") return job.state === "done" ? 1 : null;
  const within = p.steps ? (p.step || 0) / p.steps : 0;
  if (p.items) return Math.min(1, ((p.item || 1) - 1 + within) / p.items);
  return p.steps ? within : null;
}

function render(job) {
  const active = job.state === "queued" || job.state === "running";
  $("status").hidden = false;
  $("status-text").textContent = statusText(job);
  const value = progressValue(job);
  if (value == null) $("bar").removeAttribute("value"); else $("bar").value = value;
  $("stop").hidden = !active;
  $("run").disabled = $("preview").disabled = active;
  if (!active) renderUploadsButtons();

  const slot = job.kind === "strip" ? null : (job.images.current != null ? "current" : "latest");
  if (slot && job.images[slot] != null && job.images[slot] !== page.versions[slot]) {
    page.versions[slot] = job.images[slot];
    showPicture(`api/jobs/${job.id}/images/${slot}?v=${job.images[slot]}`,
                job.kind === "video" ? "The latest finished frame" : "The stylized picture");
  }
  if (job.kind === "strip") renderStrip(job);
  if (job.result) {
    const link = $("download");
    link.href = job.result.url;
    link.download = job.result.filename;
    const type = job.result.media_type.split("/")[1].toUpperCase();  // PNG, ZIP, MP4
    link.textContent = `Download ${type}` + (job.state === "stopped" ? " (so far)" : "");
    link.hidden = false;
  }
  if (job.command) {
    $("command").textContent = job.command;
    $("command-box").hidden = job.kind === "strip";
  }
}

function renderUploadsButtons() {
  const video = page.photos.length === 1 && page.photos[0].kind === "video";
  $("preview").disabled = video || page.photos.length > 1;
  $("run").disabled = false;
}

// The strip's cards are built once per job and updated in place, so that a card a
// keyboard user has focused is never replaced under them.
function renderStrip(job) {
  $("strip").hidden = false;
  const list = $("strip-items");
  if (list.dataset.job !== job.id || list.children.length !== job.strip.length) {
    list.dataset.job = job.id;
    list.replaceChildren(...job.strip.map((item) => {
      const use = el("button", { type: "button", className: "secondary", disabled: true,
                                 text: `Use ${item.strength}` });
      use.addEventListener("click", () => {
        $("strength").value = item.strength;
        showStrength();
        for (const card of list.children) card.classList.remove("chosen");
        use.closest("li").classList.add("chosen");
        start(false, true);
      });
      return el("li", {}, [el("div", { className: "frame", text: "waiting" }), use]);
    }));
  }
  job.strip.forEach((item, i) => {
    const card = list.children[i];
    const version = job.images[item.slot];
    const frame = card.querySelector(".frame");
    const src = version != null ? `api/jobs/${job.id}/images/${item.slot}?v=${version}` : null;
    if (src && frame.dataset.src !== src) {
      frame.dataset.src = src;
      frame.replaceChildren(el("img", { src, alt: `Preview at strength ${item.strength}` }));
    } else if (!src && job.progress.item === i + 1) {
      frame.textContent = "running…";
    }
    card.querySelector("button").disabled = !item.done;
  });
}

function showPicture(src, alt = "") {
  const img = $("current");
  if (!src) {
    img.hidden = true;
    $("placeholder").hidden = false;
    $("picture").classList.remove("filled");
    return;
  }
  // Swap once the new image has loaded, so the picture never blinks empty.
  const next = new Image();
  next.onload = () => {
    img.src = src;
    img.alt = alt;
    img.hidden = false;
    $("placeholder").hidden = true;
    $("picture").classList.add("filled");
  };
  next.src = src;
}

async function stop() {
  if (!page.job) return;
  page.job.stopping = true;
  render(page.job);
  try { await api(`api/jobs/${page.job.id}/stop`, { method: "POST" }); } catch (e) { showError(e.message); }
}

// ----- gallery

async function loadGallery() {
  try {
    const { results } = await api("api/gallery");
    $("gallery-empty").hidden = results.length > 0;
    $("gallery").replaceChildren(...results.map((r) => {
      const paintings = (r.settings.paintings || []).join(" + ");
      const photo = Array.isArray(r.settings.photo) ? `${r.settings.photo.length} photos` : r.settings.photo;
      const label = `${photo} × ${paintings}` + (r.state === "stopped" ? " (stopped)" : "");
      return el("li", {}, [el("a", { href: r.result.url, download: r.result.filename,
                                     title: `Download ${r.result.filename}` }, [
        el("img", { src: r.thumb, alt: label, loading: "lazy" }), el("span", { text: label })])]);
    }));
  } catch (e) { /* the gallery is a convenience: the page works without it */ }
}

// ----- start-up

async function init() {
  wireDrop("photo-drop", "photo-input", "photo");
  wireDrop("style-drop", "style-input", "style");
  $("strength").addEventListener("input", showStrength);
  $("size").addEventListener("input", sizeNote);
  $("form").addEventListener("submit", (e) => { e.preventDefault(); start(false); });
  $("preview").addEventListener("click", () => start(true));
  $("stop").addEventListener("click", stop);
  // The token was in the address once; the cookie carries it now (Jupyter does the same).
  if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname);
  try {
    applyConfig(await api("api/config"));
  } catch (e) {
    showError(`cannot reach the server: ${e.message}`);
  }
  loadGallery();
  const previous = sessionStorage.getItem("tfstyle-job");
  if (previous) {
    try {
      const job = await api(`api/jobs/${previous}`);
      if (job.state === "queued" || job.state === "running") watch(job);
    } catch (e) { sessionStorage.removeItem("tfstyle-job"); }
  }
}

document.addEventListener("DOMContentLoaded", init);
