// The Explore tab: the embedding map on a canvas (coloured by cluster or folder, a located
// query drawn as a diamond), clusters, similar documents, outliers and the question statistics.
import { ApiError, get, send } from "./api.js";
import { el, openDocument } from "./ask.js";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#86bcb6", "#d37295"];
const OTHER = "#bab0ac";  // folders beyond the palette share one colour
let points = [], scaled = [], clusters = [], folders = [];
let highlight = new Set(), selected = null, query = null, poll = null, colourBy = "cluster";
const texts = new Map();  // collection and source -> its chunks' texts by id, fetched on hover

function folderColour(name) {
  const i = folders.findIndex((f) => f.name === name);
  return i >= 0 && i < PALETTE.length ? PALETTE[i] : OTHER;
}

function colour(p) {
  return colourBy === "folder" ? folderColour(p.folder) : PALETTE[p.cluster % PALETTE.length];
}

function draw() {
  const canvas = document.getElementById("map");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!points.length) return;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const m = 12, w = canvas.width - 2 * m, h = canvas.height - 2 * m;
  const place = (x, y) => [m + ((x - x0) / (x1 - x0 || 1)) * w, m + (1 - (y - y0) / (y1 - y0 || 1)) * h];
  scaled = points.map((p) => place(p.x, p.y));
  points.forEach((p, i) => {
    const lit = highlight.size === 0 || highlight.has(p.id) || highlight.has(p.source);
    ctx.globalAlpha = lit ? 0.9 : 0.12;
    ctx.fillStyle = colour(p);
    ctx.beginPath();
    ctx.arc(scaled[i][0], scaled[i][1], p.source === selected ? 5 : 3, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.globalAlpha = 1;
  if (query?.x != null) {
    const [qx, qy] = place(query.x, query.y), r = 9;
    ctx.beginPath();
    ctx.moveTo(qx, qy - r); ctx.lineTo(qx + r, qy); ctx.lineTo(qx, qy + r); ctx.lineTo(qx - r, qy);
    ctx.closePath();
    ctx.fillStyle = "#111";
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 2;
    ctx.fill();
    ctx.stroke();
  }
}

function legend() {
  const items = colourBy === "folder"
    ? folders.map((f, i) => [i < PALETTE.length ? PALETTE[i] : OTHER, `${f.name} (${f.chunks})`])
    : clusters.map((c) => [PALETTE[c.id % PALETTE.length], `${c.terms.slice(0, 3).join(", ")} (${c.size})`]);
  document.getElementById("map-legend").replaceChildren(...items.slice(0, PALETTE.length + 1).map(([c, label]) =>
    el("li", {}, el("span", { class: "badge", style: `background:${c}` }, " "), label)));
  document.getElementById("map").setAttribute("aria-label",
    `Embedding map: each dot is a chunk, coloured by ${colourBy}; a diamond marks a located query`);
}

function nearest(event) {
  const canvas = document.getElementById("map");
  const box = canvas.getBoundingClientRect();
  const x = (event.clientX - box.left) * (canvas.width / box.width);
  const y = (event.clientY - box.top) * (canvas.height / box.height);
  let best = -1, distance = 64;
  scaled.forEach(([px, py], i) => {
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d < distance) { best = i; distance = d; }
  });
  return best >= 0 ? points[best] : null;
}

async function chunkText(collection, p) {
  const key = `${collection}\n${p.source}`;
  if (!texts.has(key)) {
    const doc = await get("/v1/documents/chunks", { source: p.source, collection });
    texts.set(key, new Map(doc.chunks.map((c) => [c.chunk_id, c.text])));
  }
  return texts.get(key).get(p.id) || "";
}

async function showTooltip(collection, p, event) {
  const tip = document.getElementById("map-tooltip");
  const box = document.getElementById("map-box").getBoundingClientRect();
  const text = el("p", { class: "muted" }, "…");
  tip.replaceChildren(el("strong", {}, p.title || p.display_source),
    el("div", { class: "muted" }, `${p.display_source} · folder ${p.folder} · cluster ${p.cluster}`), text);
  tip.style.left = `${Math.min(event.clientX - box.left + 12, box.width - 200)}px`;
  tip.style.top = `${event.clientY - box.top + 12}px`;
  tip.dataset.id = p.id;
  tip.hidden = false;
  try {
    const found = await chunkText(collection, p);
    if (tip.dataset.id === p.id) text.textContent = found.length > 240 ? `${found.slice(0, 240)}…` : found;
  } catch { text.textContent = ""; }
}

async function showSimilar(collection, source, label) {
  selected = source;
  draw();
  document.getElementById("similar-of").textContent = `Nearest to ${label}:`;
  const list = document.getElementById("similar");
  list.replaceChildren(el("li", {}, "…"));
  const found = await get("/v1/documents/similar", { source, collection, k: 8 });
  list.replaceChildren(...found.documents.map((d) => el("li", {}, `${d.score.toFixed(3)} ${d.display_source}`)));
}

function status(text) { document.getElementById("map-status").textContent = text; }

export async function loadExplore(collection) {
  clearTimeout(poll);
  const name = collection();
  try {
    const map = await get(`/v1/collections/${encodeURIComponent(name)}/map`);
    points = map.points;
    clusters = map.clusters;
    folders = map.folders;
    const job = map.job;
    if (!map.ready) {
      status(job ? `Building the map: ${job.phase} ${job.done}/${job.total}` : "No map yet.");
      if (job?.status === "failed") status(`The map failed: ${job.error}`);
      else poll = setTimeout(() => loadExplore(collection), 1500);
    } else {
      status(`${map.sampling}; ${map.total} chunks${map.stale ? " — the collection changed: rebuild the map" : ""}`);
      if (job?.status === "running") poll = setTimeout(() => loadExplore(collection), 1500);
    }
    draw();
    legend();
    document.getElementById("clusters").replaceChildren(...map.clusters.map((c) => {
      const swatch = el("span", { class: "badge", style: `background:${PALETTE[c.id % PALETTE.length]}` }, " ");
      return el("li", {}, swatch, `${c.terms.join(", ")} (${c.size})`);
    }));
    const outliers = await get(`/v1/collections/${encodeURIComponent(name)}/outliers`, { k: 10 });
    document.getElementById("outliers").replaceChildren(...outliers.outliers.map((o) => {
      const button = el("button", { class: "cite", type: "button" }, o.display_source);
      button.addEventListener("click", () => showSimilar(name, o.source, o.display_source));
      return el("li", {}, `${o.distance.toFixed(3)} `, button);
    }));
    const moved = (await get(`/v1/collections/${encodeURIComponent(name)}/shift`)).shift;
    document.getElementById("shift").textContent = moved == null
      ? "No change since the map was first built."
      : `Since the previous map: ${moved.documents_added} documents added, ${moved.documents_removed} removed; ` +
        `the mean vector moved by ${moved.centroid_distance == null ? "–" : moved.centroid_distance.toFixed(4)} (cosine distance).`;
    const stats = await get("/v1/stats", { collection: name });
    const pct = (v) => `${Math.round(v * 100)}%`;
    const sim = (v) => (v == null ? "–" : v.toFixed(2));
    document.getElementById("stats-rows").replaceChildren(...stats.series.map((b) => el("tr", {},
      el("td", {}, new Date(b.start * 1000).toLocaleString()), el("td", {}, String(b.questions)),
      el("td", {}, pct(b.abstention_rate)), el("td", {}, pct(b.quote_rate)), el("td", {}, pct(b.fallback_rate)),
      el("td", {}, `${sim(b.similarity_p10)} / ${sim(b.similarity_p50)} / ${sim(b.similarity_p90)}`))));
  } catch (error) {
    status(`Error: ${error.message}`);
  }
}

// The query placed on the map among its nearest chunks, which are highlighted.
async function locate(collection, text) {
  const said = document.getElementById("map-query");
  highlight = new Set();
  query = null;
  if (text) {
    try {
      const found = await get(`/v1/collections/${encodeURIComponent(collection)}/map/locate`, { q: text });
      for (const hit of found.hits) { highlight.add(hit.id); highlight.add(hit.source); }
      query = found;
      said.textContent = found.x == null
        ? "None of its nearest chunks is on the map yet: rebuild it."
        : `◆ marks the query, among its ${found.hits.length} nearest chunks${found.stale ? " (the map is stale)" : ""}.`;
    } catch (error) {
      said.textContent = error instanceof ApiError && error.status === 409
        ? "The map is still being built: try again shortly." : `Error: ${error.message}`;
    }
  } else said.textContent = "";
  draw();
}

export function setupExplore(collection) {
  const canvas = document.getElementById("map");
  canvas.addEventListener("mousemove", (event) => {
    const p = nearest(event);
    document.getElementById("map-hover").textContent = p ? `${p.title || p.display_source} (${p.display_source}, cluster ${p.cluster})` : "";
    if (p) showTooltip(collection(), p, event);
    else document.getElementById("map-tooltip").hidden = true;
  });
  canvas.addEventListener("mouseleave", () => { document.getElementById("map-tooltip").hidden = true; });
  canvas.addEventListener("click", (event) => {
    const p = nearest(event);
    if (!p) return;
    showSimilar(collection(), p.source, p.display_source);
    openDocument(collection(), p.source).catch((error) => status(`Error: ${error.message}`));
  });
  document.getElementById("map-refresh").addEventListener("click", async () => {
    await send("POST", `/v1/collections/${encodeURIComponent(collection())}/map`);
    loadExplore(collection);
  });
  document.getElementById("map-search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    locate(collection(), document.getElementById("map-highlight").value.trim());
  });
  for (const radio of document.querySelectorAll('input[name="colour"]')) {
    radio.addEventListener("change", () => { colourBy = radio.value; draw(); legend(); });
  }
}
