// A run streamed by the `eventsource` package (the WHATWG EventSource for
// Node), reconnecting on its own.
//
// Why: it follows the EventSource spec to the letter, so it is the reference
// for what a spec-following client does after a cut: wait the server's
// `retry:` interval (3 s until one is sent), re-request with `Last-Event-ID`,
// and give up for good on any non-200 answer or a wrong content type. Its
// `fetch` option makes the request a POST with the JSON body, on every
// reconnect too. See common.mjs for the output contract.
//
// Quirks (4.1.0; 5.x needs Node >= 22.12):
// - an event is dispatched under its `event:` name only, so listening for all
//   of them needs their names; instead `dispatchEvent` is wrapped, which sees
//   every MessageEvent.
// - an `event: error` frame arrives as a MessageEvent named `error`, mixed
//   with the library's own connection errors (its ErrorEvent, not a
//   MessageEvent), and the two are told apart by class.
// - `lastEventId` is the source's last id, not the event's own: an event
//   without an id reports the previous one.
import { EventSource } from 'eventsource';
import {
  failureRecord,
  finish,
  isLast,
  log,
  parseArgs,
  printEvent,
  startTimeout,
} from './common.mjs';

const { url, body, headers, timeoutMs, maxReconnects } = parseArgs();
startTimeout(timeoutMs);
let connections = 0;
let reconnects = 0;
let failure = null;

async function postingFetch(input, init) {
  connections += 1;
  const merged = { ...headers };
  for (const [name, value] of Object.entries(init.headers ?? {})) merged[name.toLowerCase()] = value;
  log({ connection: connections, 'last-event-id': merged['last-event-id'] ?? null });
  const response = await fetch(input, { ...init, method: 'POST', body, headers: merged });
  if (response.status !== 200) {
    // Read the body before the library drops the response, to report it.
    failure = await failureRecord(response);
    return new Response(null, { status: response.status, headers: response.headers });
  }
  return response;
}

const source = new EventSource(url, { fetch: postingFetch });
const dispatch = source.dispatchEvent.bind(source);
source.dispatchEvent = (event) => {
  if (event instanceof MessageEvent) {
    printEvent({ id: event.lastEventId, event: event.type, data: event.data });
    if (isLast(event.type)) {
      source.close();
      finish(0);
    }
    return true;
  }
  return dispatch(event);
};
source.addEventListener('error', (event) => {
  if (source.readyState === EventSource.CLOSED) {
    log({ failed: event.message ?? null, code: event.code ?? null });
    finish(2, failure ?? { status: event.code ?? null, body: event.message ?? null });
    return;
  }
  reconnects += 1;
  log({ error: event.message ?? null, reconnect: reconnects });
  if (reconnects > maxReconnects) {
    source.close();
    log({ gave_up: `more than ${maxReconnects} reconnects` });
    finish(4);
  }
});
