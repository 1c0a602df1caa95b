// uniad-edge dashboard: cameras (MJPEG), counters, score chart, NG gallery, model panel.
// Plain JavaScript, no libraries: factory networks are offline. Verdicts arrive as
// Server-Sent Events from /v1/events; nothing here polls for them.
"use strict";

const TOKEN_KEY = "uniad-edge-token";
const GALLERY_SIZE = 24;
const COLOURS = ["#4aa3ff", "#ffb347", "#b388ff", "#4dd0e1", "#f06292", "#aed581", "#ffd54f"];
const state = { counters: {}, history: [], seen: new Set(), windowS: 300, cameras: {},
  colours: {}, gallery: [], dirty: true, snapshots: 0 };

// A token given once as /?token=... is kept for this tab and removed from the address bar.
const params = new URLSearchParams(location.search);
if (params.has("token")) {
  sessionStorage.setItem(TOKEN_KEY, params.get("token"));
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
}
const token = sessionStorage.getItem(TOKEN_KEY);

function withToken(url) {
  if (!token) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

async function api(path) {
  const response = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
  if (response.status === 401) {
    banner("This server needs its token: open this page once as /?token=YOUR_TOKEN");
    throw new Error("401");
  }
  if (!response.ok && response.status !== 503) throw new Error(path + ": " + response.status);
  return response.json();
}

function banner(text) {
  const el = document.getElementById("banner");
  el.textContent = text;
  el.hidden = false;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function colour(camera) {
  if (!(camera in state.colours)) {
    state.colours[camera] = COLOURS[Object.keys(state.colours).length % COLOURS.length];
  }
  return state.colours[camera];
}

function fmt(value, digits = 2) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
}

// ---- cameras -----------------------------------------------------------------------------
function mjpegUrl(name) {
  // A fresh URL each time: after a reconnect the browser must open a new stream.
  return withToken("/v1/cameras/" + encodeURIComponent(name) + "/stream.mjpg?since=" + Date.now());
}

function cameraCard(name, info) {
  const card = el("article", { class: "camera", id: "cam-" + name });
  const head = el("div", { class: "head" });
  head.append(el("b", {}, name), el("span", { class: "muted state" }, info ? info.state : "API"));
  card.append(head);
  if (info) {
    card.append(el("img", { src: mjpegUrl(name), alt: "live overlay of " + name, "data-camera": name }));
  }
  const stats = el("div", { class: "stats" });
  stats.append(el("span", {}, "OK "), el("b", { class: "ok" }, "0"),
    el("span", {}, "NG "), el("b", { class: "ng" }, "0"),
    el("span", {}, "rate "), el("b", { class: "rate" }, "-"),
    el("span", { class: "muted lost", title: "frames the camera never delivered whole" }, ""),
    el("span", { class: "verdict last" }, ""));
  card.append(stats);
  document.getElementById("cameras").append(card);
  state.cameras[name] = card;
  colour(name);
  return card;
}

async function loadCameras() {
  const { cameras } = await api("/v1/cameras");
  for (const info of cameras) {
    const card = state.cameras[info.name] || cameraCard(info.name, info);
    card.querySelector(".state").textContent = info.state;
  }
}

// ---- counters ------------------------------------------------------------------------------
function renderCounters() {
  let ok = 0, ng = 0;
  for (const camera of Object.keys(state.counters)) if (!state.cameras[camera]) cameraCard(camera, null);
  for (const [camera, card] of Object.entries(state.cameras)) {
    const counts = state.counters[camera] || { OK: 0, NG: 0, total: 0 };
    ok += counts.OK; ng += counts.NG;
    card.querySelector(".ok").textContent = counts.OK;
    card.querySelector(".ng").textContent = counts.NG;
    const judged = counts.OK + counts.NG;
    card.querySelector(".rate").textContent = judged ? fmt((100 * counts.NG) / judged, 1) + " %" : "-";
    card.querySelector(".lost").textContent = counts.lost ? "lost " + counts.lost : "";
  }
  document.getElementById("total-ok").textContent = ok;
  document.getElementById("total-ng").textContent = ng;
  document.getElementById("total-rate").textContent = ok + ng ? fmt((100 * ng) / (ok + ng), 1) + " %" : "-";
}

function showLast(event) {
  const card = state.cameras[event.camera] || cameraCard(event.camera, null);
  const badge = card.querySelector(".last");
  badge.textContent = (event.verdict || "?") + " " + fmt(event.normalized_score);
  badge.className = "verdict last " + (event.verdict || "");
}

// ---- events --------------------------------------------------------------------------------
function addEvent(event, count) {
  if (state.seen.has(event.seq)) return;
  state.seen.add(event.seq);
  state.history.push(event);
  if (count) state.counters[event.camera] = event.counts;  // the station's own counters
  if (event.verdict === "NG" && event.gallery) addToGallery(event);
  showLast(event);
  state.dirty = true;
}

function connect() {
  const link = document.getElementById("link");
  const source = new EventSource(withToken("/v1/events"));
  source.addEventListener("open", () => { link.textContent = "live"; link.className = "link up"; });
  source.addEventListener("error", () => { link.textContent = "reconnecting"; link.className = "link down"; });
  source.addEventListener("snapshot", (message) => {
    const snap = JSON.parse(message.data);
    state.windowS = snap.history_s;
    document.getElementById("window-min").textContent = Math.round(snap.history_s / 60);
    // The snapshot is authoritative: after a reconnect (or a server restart, which starts its
    // sequence numbers again) the page is rebuilt from it.
    if (state.snapshots++ > 0) {  // a reconnect: the MJPEG streams broke with the old connection
      for (const img of document.querySelectorAll(".camera img")) img.src = mjpegUrl(img.dataset.camera);
    }
    state.counters = snap.counters;
    state.history = [];
    state.seen = new Set();
    for (const event of snap.history) addEvent(event, false);
    renderCounters();
  });
  source.addEventListener("verdict", (message) => {
    addEvent(JSON.parse(message.data), true);
    renderCounters();
  });
}

// ---- chart ---------------------------------------------------------------------------------
function drawChart() {
  const canvas = document.getElementById("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== width * ratio) { canvas.width = width * ratio; canvas.height = height * ratio; }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const now = Date.now() / 1000, start = now - state.windowS;
  state.history = state.history.filter((e) => e.timestamp >= start);
  const points = state.history.filter((e) => e.normalized_score !== null);
  const top = Math.max(2, Math.min(10, 1.1 * Math.max(0, ...points.map((e) => e.normalized_score))));
  const left = 36, bottom = height - 20, plotW = width - left - 8, plotH = bottom - 8;
  const x = (t) => left + ((t - start) / state.windowS) * plotW;
  const y = (v) => bottom - (Math.min(v, top) / top) * plotH;
  ctx.strokeStyle = "#2d3440"; ctx.fillStyle = "#8a93a0"; ctx.font = "11px sans-serif"; ctx.lineWidth = 1;
  for (let v = 0; v <= top + 1e-9; v += top > 4 ? 2 : 0.5) {
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(left + plotW, y(v)); ctx.stroke();
    ctx.fillText(v.toFixed(1), 4, y(v) + 4);
  }
  for (let m = 0; m <= state.windowS / 60; m += 1) ctx.fillText("-" + m + "m", x(now - 60 * m) - 12, height - 4);
  ctx.strokeStyle = "#e6283c"; ctx.setLineDash([6, 4]); ctx.lineWidth = 1.5;
  ctx.beginPath(); ctx.moveTo(left, y(1)); ctx.lineTo(left + plotW, y(1)); ctx.stroke();
  ctx.setLineDash([]);
  for (const event of points) {
    ctx.fillStyle = colour(event.camera);
    ctx.beginPath();
    ctx.arc(x(event.timestamp), y(event.normalized_score), event.verdict === "NG" ? 3.5 : 2.5, 0, 2 * Math.PI);
    ctx.fill();
  }
  canvas.dataset.points = points.length;
  const legend = document.getElementById("legend");
  legend.replaceChildren(...Object.keys(state.colours).map((camera) => {
    const item = el("span", {}, camera);
    const dot = el("i"); dot.style.background = colour(camera);
    item.prepend(dot);
    return item;
  }));
}

function tick() {
  drawChart();
  state.dirty = false;
}

// ---- gallery -------------------------------------------------------------------------------
function addToGallery(item) {
  if (state.gallery.some((g) => g.gallery === item.gallery)) return;
  state.gallery.unshift(item);
  state.gallery.length = Math.min(state.gallery.length, GALLERY_SIZE);
  const gallery = document.getElementById("gallery");
  document.getElementById("gallery-empty")?.remove();
  const figure = el("figure", { "data-file": item.gallery });
  const url = withToken("/v1/gallery/" + item.gallery.split("/").map(encodeURIComponent).join("/"));
  figure.append(el("img", { src: url, alt: "NG " + item.camera, loading: "lazy" }),
    el("figcaption", {}, (item.camera || "saved") + " " + fmt(item.normalized_score) + " " +
      new Date(item.timestamp * 1000).toLocaleTimeString()));
  figure.addEventListener("click", () => {
    document.getElementById("zoom-img").src = url;
    document.getElementById("zoom-caption").textContent = (item.camera || item.gallery) + ", score " + fmt(item.score, 4) +
      " (normalised " + fmt(item.normalized_score) + ")" + (item.part_id ? ", part " + item.part_id : "");
    document.getElementById("zoom").showModal();
  });
  gallery.prepend(figure);
  while (gallery.children.length > GALLERY_SIZE) gallery.lastChild.remove();
}

async function loadGallery() {
  const { items } = await api("/v1/gallery");
  for (const item of items.slice().reverse()) addToGallery(item);
}

// ---- model ---------------------------------------------------------------------------------
async function loadModel() {
  const info = await api("/v1/model");
  const meta = info.metadata;
  document.getElementById("model-name").textContent = meta.name + " (" + info.backend + ")";
  const rows = [
    ["model", info.path], ["preset", meta.preset], ["input", info.input_size.join("x")],
    ["precision", meta.precision], ["max batch", info.max_batch],
    ["backbone", meta.backbone_pretrained ? "ImageNet-pretrained" : "random init"],
    ["threshold in use", fmt(info.threshold_in_use.value, 4) + " (" + info.threshold_in_use.source + ")"],
    ["global threshold", fmt(info.thresholds.global, 4)],
    ["threshold rule", info.thresholds.provenance || "-"],
  ];
  for (const [name, value] of Object.entries(info.thresholds.per_class)) rows.push(["class " + name, fmt(value, 4)]);
  for (const [name, cam] of Object.entries(info.camera_thresholds)) {
    rows.push(["camera " + name, fmt(cam.value, 4) + (cam.class_name ? " (" + cam.class_name + ")" : "")]);
  }
  document.getElementById("model").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}

async function start() {
  try {
    await Promise.all([loadModel(), loadCameras(), loadGallery()]);
  } catch (error) {
    if (error.message !== "401") banner("Cannot reach the server: " + error.message);
    return;
  }
  connect();
  setInterval(loadCameras, 5000);
  setInterval(tick, 1000);
  (function frame() { if (state.dirty) tick(); requestAnimationFrame(frame); })();
}

start();
