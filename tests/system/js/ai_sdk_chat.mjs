// The AI SDK's own client side of useChat, run against a service's /ai-sdk/<program>.
//
// Why: the UI message stream is only right if the `ai` package's reader makes of
// it what a React useChat would show. This script sends a conversation with
// DefaultChatTransport (what useChat uses), reads the answer with
// readUIMessageStream (what builds the assistant's UIMessage), and prints, as
// one JSON line on stdout:
//
//   {"chunks": [UIMessageChunk...], "message": UIMessage|null, "errors": [text...],
//    "aborted": bool}
//   or, when the request itself fails (an HTTP error), {"failed": "<the SDK's message>"}.
//
// Usage: node ai_sdk_chat.mjs URL JSON_REQUEST [HEADERS_JSON] [ABORT_AFTER_TEXT_DELTAS=0]
// JSON_REQUEST is {"messages": [UIMessage...], "body": {...extra body fields}}.
import { DefaultChatTransport, readUIMessageStream } from 'ai';

const [url, request, headers = '{}', abortAfter = '0'] = process.argv.slice(2);
const { messages, body = {} } = JSON.parse(request);
const controller = new AbortController();
const transport = new DefaultChatTransport({ api: url, headers: JSON.parse(headers) });
const chunks = [];
const errors = [];
let aborted = false;
let deltas = 0;

let stream;
try {
  stream = await transport.sendMessages({
    trigger: 'submit-message',
    chatId: 'chat-1',
    messageId: undefined,
    messages,
    abortSignal: controller.signal,
    body,
  });
} catch (error) {
  process.stdout.write(JSON.stringify({ failed: String(error?.message ?? error) }) + '\n');
  process.exit(0);
}

const recorded = stream.pipeThrough(
  new TransformStream({
    transform(chunk, out) {
      chunks.push(chunk);
      if (chunk.type === 'text-delta' && Number(abortAfter) > 0 && ++deltas >= Number(abortAfter)) {
        aborted = true;
        controller.abort();
      }
      out.enqueue(chunk);
    },
  }),
);
let message = null;
try {
  for await (const snapshot of readUIMessageStream({
    stream: recorded,
    onError: (error) => errors.push(String(error?.message ?? error)),
  })) {
    message = snapshot;
  }
} catch (error) {
  if (!aborted) errors.push(String(error?.message ?? error));
}
process.stdout.write(JSON.stringify({ chunks, message, errors, aborted }) + '\n');
process.exit(0);
