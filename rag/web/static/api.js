// Calls to the service's REST API, with the bearer key kept in localStorage.
const KEY = "rag.apiKey";

export function apiKey() { return localStorage.getItem(KEY) || ""; }
export function setApiKey(value) {
  if (value) localStorage.setItem(KEY, value); else localStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function check(response) {
  if (response.ok) return response;
  let message = response.statusText;
  try { message = (await response.json()).error.message; } catch { /* not our JSON */ }
  throw new ApiError(response.status, message);
}

export async function get(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await check(await fetch(url, { headers: headers() }));
  return response.status === 204 ? null : response.json();
}

export async function send(method, path, body) {
  const init = { method, headers: headers({ "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  return (await check(await fetch(path, init))).json();
}

export async function del(path, params = {}) {
  const query = new URLSearchParams(params);
  return (await check(await fetch(`${path}?${query}`, { method: "DELETE", headers: headers() }))).json();
}

// Server-sent events of a streamed chat completion: calls onDelta(text) per content chunk,
// returns the final chunk (with citations and rag info).
export async function streamChat(body, onDelta) {
  const response = await check(await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ ...body, stream: true }),
  }));
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return last;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(500, chunk.error.message);
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) onDelta(delta);
        if (chunk.citations || chunk.rag) last = chunk;
      }
    }
  }
  return last;
}

// An upload with progress (fetch reports none): resolves with the job.
export function upload(files, collection, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("files", file);
    form.append("collection", collection);
    const request = new XMLHttpRequest();
    request.open("POST", "/v1/documents");
    for (const [k, v] of Object.entries(headers())) request.setRequestHeader(k, v);
    request.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    request.onload = () => {
      const body = JSON.parse(request.responseText || "{}");
      if (request.status < 300) resolve(body);
      else reject(new ApiError(request.status, body.error?.message || request.statusText));
    };
    request.onerror = () => reject(new ApiError(0, "network error"));
    request.send(form);
  });
}
