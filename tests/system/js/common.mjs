// Shared by the SSE client scripts: arguments, the output contract, the bounds.
//
// Why: the system tests run real browser-style SSE libraries against the
// service to show that a client that only follows the SSE spec (reconnect,
// Last-Event-ID) resumes a run without a gap or a duplicate. Both scripts print
// the same thing, so tests/system/sse_clients.py reads either the same way:
//
//   stdout: one JSON line per event received, {"id", "event", "data"} (data is
//           the raw data string; event is "message" for a frame without one);
//           on a failure that is not retried, a last line {"status", "body"}
//           (body parsed as JSON when it is JSON, else the text).
//   stderr: one JSON line per connection attempt and per error, for diagnosis.
//   exit:   0 after an event `done` or `error`; 2 after a failure that is not
//           retried (the status line); 3 on the overall timeout; 4 after too
//           many reconnects; 1 on anything unexpected.
//
// Usage: node SCRIPT URL JSON_BODY [HEADERS_JSON] [TIMEOUT_SECONDS=60] [MAX_RECONNECTS=50]

export function parseArgs(argv = process.argv.slice(2)) {
  const [url, body, headers = '{}', timeout = '60', maxReconnects = '50'] = argv;
  if (!url || body === undefined) {
    process.stderr.write(
      'usage: node SCRIPT URL JSON_BODY [HEADERS_JSON] [TIMEOUT_SECONDS] [MAX_RECONNECTS]\n',
    );
    process.exit(1);
  }
  JSON.parse(body); // fail early on a body that is not JSON
  // Lower-case names: the libraries add `last-event-id` / `Last-Event-ID` themselves, and a
  // caller's header of the same name in another case would be sent joined with theirs.
  const parsed = Object.fromEntries(
    Object.entries(JSON.parse(headers)).map(([name, value]) => [name.toLowerCase(), String(value)]),
  );
  return {
    url,
    body,
    headers: { 'content-type': 'application/json', ...parsed },
    timeoutMs: Number(timeout) * 1000,
    maxReconnects: Number(maxReconnects),
  };
}

export function log(record) {
  process.stderr.write(JSON.stringify(record) + '\n');
}

// Print the line, then exit once it is written.
export function finish(code, record) {
  const exit = () => process.exit(code);
  if (record === undefined) exit();
  else process.stdout.write(JSON.stringify(record) + '\n', exit);
}

export function printEvent({ id, event, data }) {
  process.stdout.write(JSON.stringify({ id, event: event || 'message', data }) + '\n');
}

export function isLast(event) {
  return event === 'done' || event === 'error';
}

// The whole run's bound: a client that never gets `done` must not hang a test.
export function startTimeout(timeoutMs) {
  return setTimeout(() => {
    log({ timeout: timeoutMs / 1000 });
    finish(3);
  }, timeoutMs);
}

export async function failureRecord(response) {
  const text = await response.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body };
}
