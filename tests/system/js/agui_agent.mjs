// The AG-UI client side, @ag-ui/client's HttpAgent, run against a service's /agui/<program>.
//
// Why: the event stream is only right if the AG-UI client accepts it (it
// verifies the order of events and fails a run that breaks the protocol) and
// builds from it what an AG-UI frontend would show. This script runs the agent
// once with runAgent and prints, as one JSON line on stdout:
//
//   {"events": [BaseEvent...], "messages": [Message...], "state": State,
//    "result": any, "failed": "<error message>"|null, "aborted": bool}
//
// Usage: node agui_agent.mjs URL JSON_REQUEST [HEADERS_JSON] [ABORT_AFTER_CONTENT_EVENTS=0]
// JSON_REQUEST is {"messages": [Message...], "forwardedProps": {...}}.
import { HttpAgent } from '@ag-ui/client';

const [url, request, headers = '{}', abortAfter = '0'] = process.argv.slice(2);
const { messages = [], forwardedProps } = JSON.parse(request);
const agent = new HttpAgent({
  url,
  headers: JSON.parse(headers),
  threadId: 'thread-1',
  initialMessages: messages,
});
const events = [];
let aborted = false;
let contents = 0;
let result = null;
let failed = null;

try {
  const run = await agent.runAgent(
    { runId: 'run-1', forwardedProps },
    {
      onEvent({ event }) {
        events.push(event);
        if (event.type === 'TEXT_MESSAGE_CONTENT' && Number(abortAfter) > 0) {
          if (++contents >= Number(abortAfter) && !aborted) {
            aborted = true;
            agent.abortRun();
          }
        }
      },
    },
  );
  result = run.result ?? null;
} catch (error) {
  if (!aborted) failed = String(error?.message ?? error);
}
const output = { events, messages: agent.messages, state: agent.state, result, failed, aborted };
process.stdout.write(JSON.stringify(output) + '\n');
process.exit(0);
