// Talking to the service: its URLs, the API key, and a Server-Sent Events reader.
//
// The browser's EventSource can neither POST a body nor send an API key header,
// so a stream is read from fetch()'s body with the small parser below (the
// WHATWG event-stream rules: `event:`, `data:`, `id:` fields, a blank line ends
// an event, a line starting with `:` is a comment such as the keep-alive ping).

// The service's root: the page's modules live under <root>/playground/.
export const ROOT = new URL("../", import.meta.url);
const KEY_STORAGE = "dspy-forge-playground-api-key";

/** The absolute URL of a service path such as `/v1/programs`. */
export function serviceUrl(path) {
  return new URL(path.replace(/^\//, ""), ROOT).href;
}

/** The API key of this tab (sessionStorage only: it is gone when the tab closes). */
export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) ?? "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** The headers of a call to the API: the key, when one is set. */
export function authHeaders() {
  const key = apiKey();
  return key ? { "X-API-Key": key } : {};
}

/** A failed response as the service's error body: `{code, message, fields?}`. */
export async function errorOf(response) {
  try {
    const body = await response.json();
    if (body?.error?.code) return body.error;
  } catch {
    // not the service's JSON (a proxy's page, a cut connection): described below
  }
  return { code: `http_${response.status}`, message: `The service answered ${response.status}.` };
}

/** GET a JSON resource of the service; `{ok, value}` or `{ok: false, status, error}`. */
export async function getJson(path) {
  const response = await fetch(serviceUrl(path), { headers: { ...authHeaders(), accept: "application/json" } });
  if (!response.ok) return { ok: false, status: response.status, error: await errorOf(response) };
  return { ok: true, value: await response.json() };
}

/** POST to a service path with the key; the response. */
export function post(path, body, { signal, accept = "application/json" } = {}) {
  return fetch(serviceUrl(path), {
    method: "POST",
    headers: { ...authHeaders(), "content-type": "application/json", accept },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
}

/** Each event of an SSE response, as `{event, id, data}` with `data` parsed from JSON. */
export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "message", id: null, retry: null, data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    for (;;) {
      const end = buffer.search(/[\r\n]/);
      // A line ends at \n, \r or \r\n: a \r last in the buffer may be half of a \r\n.
      if (end < 0 || (buffer[end] === "\r" && end === buffer.length - 1)) break;
      const line = buffer.slice(0, end);
      buffer = buffer.slice(buffer.startsWith("\r\n", end) ? end + 2 : end + 1);
      if (line === "") {
        if (event.data.length) {
          yield { event: event.event, id: event.id, retry: event.retry, data: parse(event.data.join("\n")) };
        }
        event = { event: "message", id: null, retry: null, data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? "" : line.slice(colon + 1);
      if (text.startsWith(" ")) text = text.slice(1);
      if (field === "event") event.event = text;
      else if (field === "data") event.data.push(text);
      else if (field === "id") event.id = text;
      else if (field === "retry" && /^\d+$/.test(text)) event.retry = Number(text);
    }
  }
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { text };
  }
}
