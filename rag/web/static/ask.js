// The Ask tab: a conversation streamed from /v1/chat/completions, citations that open the
// cited passage. With a source prefix the question goes to /v1/query, which filters by it.
import { get, send, streamChat } from "./api.js";

const messages = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}
export { el };

// Passage text with the **supporting sentences** a quote marks in bold highlighted, and the
// *heading path* and _notes_ the answer sets in italics shown as such (never as raw HTML).
function highlighted(text) {
  const box = el("span");
  text.split(/(\*\*[^*]+\*\*|(?<![\w*])\*[^*\n]+\*(?![\w*])|(?<!\w)_[^_\n]+_(?!\w))/).forEach((part) => {
    if (part.startsWith("**") && part.endsWith("**") && part.length > 4) box.append(el("mark", {}, part.slice(2, -2)));
    else if (/^([*_]).+\1$/s.test(part) && part.length > 2) box.append(el("em", {}, part.slice(1, -1)));
    else box.append(part);
  });
  return box;
}

// The passage with the sentences that support the answer marked. They come with their
// whitespace collapsed, so each is found as its words with any whitespace between them.
function supported(text, sentences) {
  const escape = (word) => word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const ranges = [];
  for (const sentence of sentences || []) {
    const words = sentence.split(/\s+/).filter(Boolean);
    const found = words.length && new RegExp(words.map(escape).join("\\s+")).exec(text);
    if (found) ranges.push([found.index, found.index + found[0].length]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const box = el("span");
  let at = 0;
  for (const [start, end] of ranges) {
    if (start < at) continue;  // overlaps one already marked
    box.append(highlighted(text.slice(at, start)), el("mark", { class: "support" }, text.slice(start, end)));
    at = end;
  }
  box.append(highlighted(text.slice(at)));
  return box;
}

function openPassage(citation) {
  const dialog = document.getElementById("passage");
  document.getElementById("passage-title").textContent = `[${citation.n}] ${citation.title || citation.display_source}`;
  const where = [citation.display_source, ...citation.heading_path];
  if (citation.page != null) where.push(`page ${citation.page}`);
  document.getElementById("passage-where").textContent = where.join(" › ");
  document.getElementById("passage-text").replaceChildren(supported(citation.quote, citation.supporting));
  dialog.showModal();
}

// A document opens to its chunks, in reading order, in the passage dialog.
export async function openDocument(collection, source) {
  const doc = await get("/v1/documents/chunks", { source, collection });
  document.getElementById("passage-title").textContent = doc.title || doc.display_source;
  document.getElementById("passage-where").textContent =
    `${doc.display_source} · ${doc.chunks.length} chunks`;
  document.getElementById("passage-text").replaceChildren(...doc.chunks.map((c) => el("section", { class: "chunk" },
    el("div", { class: "muted" }, [...c.heading_path, ...(c.page != null ? [`page ${c.page}`] : [])].join(" › ")),
    el("p", {}, c.text))));
  document.getElementById("passage").showModal();
}

function renderAnswer(box, text, citations) {
  box.replaceChildren();
  const byN = new Map((citations || []).map((c) => [c.n, c]));
  const body = text.split("\n\n**Sources**")[0];  // the footer repeats the citations as text
  body.split(/(\[\d+\])/).forEach((part) => {
    const n = /^\[(\d+)\]$/.exec(part);
    const citation = n && byN.get(Number(n[1]));
    if (citation) {
      const button = el("button", { class: "cite", type: "button", "aria-label": `Open source ${n[1]}: ${citation.display_source}` }, part);
      button.addEventListener("click", () => openPassage(citation));
      box.append(button);
    } else box.append(highlighted(part));
  });
  if (citations?.length) {
    const list = el("ol", { class: "muted" });
    for (const c of citations) {
      const button = el("button", { class: "cite", type: "button" }, c.display_source);
      button.addEventListener("click", () => openPassage(c));
      list.append(el("li", { value: String(c.n) }, button, c.heading_path.length ? ` — ${c.heading_path.join(" › ")}` : ""));
    }
    box.append(list);
  }
}

function badges(box, abstained, quoted) {
  if (abstained) box.prepend(el("span", { class: "badge" }, "No answer in the documents"));
  else if (quoted) box.prepend(el("span", { class: "badge" }, "Quoted from the documents"));
}

export function setupAsk(collection) {
  const form = document.getElementById("ask-form");
  const conversation = document.getElementById("conversation");
  document.getElementById("new-chat").addEventListener("click", () => {
    messages.length = 0;
    conversation.replaceChildren();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("question");
    const question = input.value.trim();
    if (!question) return;
    input.value = "";
    conversation.append(el("div", { class: "turn user" }, question));
    const box = el("div", { class: "turn" }, "…");
    conversation.append(box);
    const prefix = document.getElementById("ask-prefix").value.trim();
    try {
      if (prefix) {
        const answer = await send("POST", "/v1/query", { question, collection: collection(), source_prefix: prefix });
        renderAnswer(box, answer.answer, answer.citations);
        badges(box, answer.abstained, answer.extractive);
        messages.push({ role: "user", content: question }, { role: "assistant", content: answer.answer });
        return;
      }
      messages.push({ role: "user", content: question });
      let text = "";
      const last = await streamChat({ model: `rag-${collection()}`, messages }, (delta) => {
        text += delta;
        box.textContent = text;
      });
      renderAnswer(box, text, last?.citations);
      badges(box, last?.rag?.abstained, last?.rag?.extractive);
      messages.push({ role: "assistant", content: text });
    } catch (error) {
      box.textContent = `Error: ${error.message}`;
    }
  });
}
