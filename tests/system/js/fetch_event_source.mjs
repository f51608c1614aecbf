// A run streamed by @microsoft/fetch-event-source, reconnecting on its own.
//
// Why: it is the library web front-ends use to POST to an SSE endpoint (the
// browser's EventSource cannot POST). Its retries are its own: after a cut or
// an early end it re-sends the same POST with the `last-event-id` it tracked,
// after the server's `retry:` interval. See common.mjs for the output contract.
//
// Quirks of 2.0.1 under Node (20):
// - its ESM build imports './parse' without an extension, which Node's ESM
//   loader refuses; the package has no "exports", so `import` gets the CJS
//   build, whose named export Node finds.
// - it calls `window.fetch`, `window.setTimeout`, `window.clearTimeout` and,
//   even with `openWhenHidden: true`, `document.removeEventListener` when it
//   ends: hence the two shims below.
// - it calls `onmessage` for every blank line, comment-only (`: ping`) and
//   `retry:`-only frames included, as empty messages; these are skipped here
//   as the SSE spec's EventSource does (a frame without data is no event).
// - a response that ends cleanly resolves the promise unless `onclose`
//   throws; a retriable error thrown there (or from `onopen`, or the body's
//   read failing on a cut) goes to `onerror`, whose return value (none here:
//   the server's `retry:` field, default 1 s) is the delay before retrying.
import { fetchEventSource } from '@microsoft/fetch-event-source';
import {
  failureRecord,
  finish,
  isLast,
  log,
  parseArgs,
  printEvent,
  startTimeout,
} from './common.mjs';

globalThis.window ??= globalThis;
globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };

class Retriable extends Error {}
class Fatal extends Error {
  constructor(message, code, record) {
    super(message);
    this.code = code;
    this.record = record;
  }
}

const { url, body, headers, timeoutMs, maxReconnects } = parseArgs();
startTimeout(timeoutMs);
const controller = new AbortController();
let connections = 0;
let reconnects = 0;

function countingFetch(input, init) {
  connections += 1;
  log({ connection: connections, 'last-event-id': init.headers['last-event-id'] ?? null });
  return fetch(input, init);
}

try {
  await fetchEventSource(url, {
    method: 'POST',
    headers,
    body,
    signal: controller.signal,
    openWhenHidden: true,
    fetch: countingFetch,
    async onopen(response) {
      const type = response.headers.get('content-type') ?? '';
      if (response.ok && type.startsWith('text/event-stream')) return;
      const record = await failureRecord(response);
      if (response.status >= 400 && response.status < 500) {
        throw new Fatal(`status ${response.status}`, 2, record);
      }
      log({ retrying: record });
      throw new Retriable(`status ${response.status} (${type})`);
    },
    onmessage(message) {
      if (message.data === '') return; // a comment, retry: or id-only frame (see above)
      printEvent(message);
      if (isLast(message.event)) {
        controller.abort();
        finish(0);
      }
    },
    onclose() {
      throw new Retriable('the stream ended before done');
    },
    onerror(error) {
      if (error instanceof Fatal) throw error;
      reconnects += 1;
      log({ error: String(error?.cause ?? error), reconnect: reconnects });
      if (reconnects > maxReconnects) {
        throw new Fatal(`more than ${maxReconnects} reconnects`, 4);
      }
      // undefined: the library waits the server's retry: interval
    },
  });
} catch (error) {
  if (error instanceof Fatal) finish(error.code, error.record);
  else {
    log({ unexpected: String(error?.stack ?? error) });
    finish(1);
  }
}
