// The web app's entry: tabs, theme, API key, collection picker; each tab's module does the rest.
import { ApiError, apiKey, del, get, send, setApiKey, upload } from "./api.js";
import { el, openDocument, setupAsk } from "./ask.js";
import { loadExplore, setupExplore } from "./explore.js";

const picker = document.getElementById("collection");
const collection = () => picker.value;
const loaders = {};

function selectTab(tab) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const on = other === tab;
    other.setAttribute("aria-selected", String(on));
    other.tabIndex = on ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !on;
  }
  tab.focus();
  loaders[tab.getAttribute("aria-controls")]?.();
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) selectTab(tabs[(i + step + tabs.length) % tabs.length]);
    });
  });
}

function setupTheme() {
  const saved = localStorage.getItem("rag.theme");
  const dark = saved ? saved === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  document.getElementById("theme").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("rag.theme", next);
  });
}

function askKey() {
  const value = prompt("API key (sent as a bearer token; kept in this browser):", apiKey());
  if (value !== null) { setApiKey(value.trim()); loadCollections(); }
}

async function loadCollections() {
  try {
    const { collections } = await get("/v1/collections");
    const current = picker.value || localStorage.getItem("rag.collection");
    picker.replaceChildren(...collections.map((c) => el("option", { value: c.name }, c.name)));
    if (collections.some((c) => c.name === current)) picker.value = current;
    document.getElementById("collection-rows").replaceChildren(...collections.map((c) => {
      const reindex = el("button", { type: "button" }, "Reindex");
      reindex.addEventListener("click", () => send("POST", `/v1/collections/${c.name}/reindex`).then(() => alert("Reindexing as a job.")));
      const drop = el("button", { type: "button" }, "Drop");
      drop.addEventListener("click", async () => {
        if (confirm(`Drop collection ${c.name} and all its chunks?`)) { await del(`/v1/collections/${c.name}`); loadCollections(); }
      });
      return el("tr", {}, el("td", {}, c.name), el("td", {}, String(c.chunks)), el("td", {}, reindex, " ", drop));
    }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) askKey();
  }
}

async function loadDocuments() {
  await loadCollections();
  const docs = await get("/v1/documents", { collection: collection() });
  document.getElementById("doc-rows").replaceChildren(...docs.map((d) => {
    const remove = el("button", { type: "button", "aria-label": `Delete ${d.source}` }, "Delete");
    remove.addEventListener("click", async () => {
      if (confirm(`Delete ${d.source}?`)) { await del("/v1/documents", { source: d.source, collection: collection() }); loadDocuments(); }
    });
    return el("tr", {}, el("td", {}, openDocumentButton(d.source, d.source)), el("td", {}, String(d.chunks)), el("td", {}, `${Math.ceil(d.size / 1024)} KB`), el("td", {}, remove));
  }));
}

async function watchJob(id, status) {
  for (;;) {
    const job = await get(`/v1/jobs/${id}`);
    status.textContent = `Ingesting: ${job.status}, ${job.progress.files_done}/${job.progress.files_total} files`;
    if (job.status === "done" || job.status === "failed") {
      if (job.error) status.textContent += ` — ${job.error}`;
      loadDocuments();
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function setupDocuments() {
  const drop = document.getElementById("drop");
  const input = document.getElementById("upload-input");
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const send_ = async (files) => {
    if (!files.length) return;
    bar.hidden = false;
    try {
      const job = await upload(files, collection(), (f) => { bar.value = f * 100; });
      watchJob(job.id, status);
    } catch (error) { status.textContent = `Upload refused: ${error.message}`; }
    finally { bar.hidden = true; }
  };
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  input.addEventListener("change", () => send_([...input.files]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); send_([...e.dataTransfer.files]); });
  document.getElementById("collection-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = document.getElementById("new-collection").value.trim();
    try { await send("POST", "/v1/collections", { name }); loadCollections(); }
    catch (error) { alert(error.message); }
  });
}

function openDocumentButton(source, label) {
  const button = el("button", { class: "cite", type: "button", "aria-label": `Open ${label}` }, label);
  button.addEventListener("click", () => openDocument(collection(), source).catch((error) => alert(error.message)));
  return button;
}

function setupSearch() {
  document.getElementById("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const list = document.getElementById("search-results");
    try {
      const found = await send("POST", "/v1/search", {
        query: document.getElementById("search-query").value,
        collection: collection(),
        k: Number(document.getElementById("search-k").value),
        source_prefix: document.getElementById("search-prefix").value.trim() || null,
      });
      list.replaceChildren(...found.hits.map((h) => el("li", {},
        openDocumentButton(h.source, h.display_source), ` — score ${h.score.toFixed(3)}`,
        h.page != null ? `, page ${h.page}` : "",
        el("div", { class: "muted" }, h.heading_path.join(" › ")),
        el("p", {}, h.text.slice(0, 400)))));
    } catch (error) { list.replaceChildren(el("li", {}, `Error: ${error.message}`)); }
  });
}

async function loadSettings() {
  const health = await fetch("/healthz").then((r) => r.json()).catch(() => ({}));
  const { settings } = await get("/v1/settings");
  const rows = Object.entries(settings).map(([k, v]) => `RAG_${k.toUpperCase()} = ${JSON.stringify(v)}`);
  document.getElementById("settings-json").textContent =
    `${JSON.stringify(health, null, 2)}\n\n${rows.join("\n")}`;
}

setupTheme();
setupTabs();
setupAsk(collection);
setupSearch();
setupDocuments();
setupExplore(collection);
document.getElementById("key").addEventListener("click", askKey);
picker.addEventListener("change", () => {
  localStorage.setItem("rag.collection", picker.value);
  const open = document.querySelector('[aria-selected="true"]');
  loaders[open.getAttribute("aria-controls")]?.();
});
loaders.documents = loadDocuments;
loaders.explore = () => loadExplore(collection);
loaders.settings = loadSettings;
loadCollections();
