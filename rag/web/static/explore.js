// The Explore tab: the embedding map on a canvas, clusters, similar documents, outliers and
// the question statistics.
import { get, send } from "./api.js";
import { el } from "./ask.js";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d37295"];
let points = [], scaled = [], highlight = new Set(), selected = null, poll = null;

function draw() {
  const canvas = document.getElementById("map");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!points.length) return;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const m = 12, w = canvas.width - 2 * m, h = canvas.height - 2 * m;
  scaled = points.map((p) => [m + ((p.x - x0) / (x1 - x0 || 1)) * w, m + (1 - (p.y - y0) / (y1 - y0 || 1)) * h]);
  points.forEach((p, i) => {
    const lit = highlight.size === 0 || highlight.has(p.id) || highlight.has(p.source);
    ctx.globalAlpha = lit ? 0.9 : 0.12;
    ctx.fillStyle = PALETTE[p.cluster % PALETTE.length];
    ctx.beginPath();
    ctx.arc(scaled[i][0], scaled[i][1], p.source === selected ? 5 : 3, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.globalAlpha = 1;
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

export function setupExplore(collection) {
  const canvas = document.getElementById("map");
  canvas.addEventListener("mousemove", (event) => {
    const p = nearest(event);
    document.getElementById("map-hover").textContent = p ? `${p.display_source} (cluster ${p.cluster})` : "";
  });
  canvas.addEventListener("click", (event) => {
    const p = nearest(event);
    if (p) showSimilar(collection(), p.source, p.display_source);
  });
  document.getElementById("map-refresh").addEventListener("click", async () => {
    await send("POST", `/v1/collections/${encodeURIComponent(collection())}/map`);
    loadExplore(collection);
  });
  document.getElementById("map-highlight").addEventListener("change", async (event) => {
    const query = event.target.value.trim();
    highlight = new Set();
    if (query) {
      const found = await send("POST", "/v1/search", { query, collection: collection(), k: 50 });
      for (const hit of found.hits) { highlight.add(hit.chunk_id); highlight.add(hit.source); }
    }
    draw();
  });
}
