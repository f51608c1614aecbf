// The playground's controller: programs from GET /v1/programs, a form per
// program, and a run over the program's stream that the Stop button cancels.

import { InputForm } from "./form.js";
import { curl, python } from "./snippets.js";
import { apiKey, authHeaders, errorOf, getJson, post, readEvents, serviceUrl, setApiKey } from "./stream.js";
import { RunView } from "./view.js";

const $ = (id) => document.getElementById(id);
const view = new RunView({
  alert: $("alert"), timings: $("timings"), streams: $("streams"),
  timeline: $("timeline"), outputs: $("outputs"),
});
let programs = [];
let form = null;
let run = null; // the run in progress: {controller, runId, lastEventId, stopping}
let keysOn = false;

/** Ask for a key (again) after a 401; a refused key is forgotten, but left in the field to fix. */
function askForKey(fallback) {
  const message = apiKey() ? "The service refused this API key." : fallback;
  setApiKey("");
  keysOn = true;
  $("key-box").hidden = false;
  $("api-key").focus();
  view.error({ code: "unauthorized", message }, "Enter a valid API key above, then choose Use key.");
}

async function loadPrograms() {
  let answer;
  try {
    answer = await getJson("/v1/programs");
  } catch (error) {
    view.error({ code: "network_error", message: `The service did not answer: ${error.message}` });
    return;
  }
  if (!answer.ok) {
    if (answer.status === 401) {
      askForKey("This service needs an API key.");
    } else {
      view.error(answer.error, "The programs could not be listed.");
    }
    return;
  }
  $("alert").replaceChildren();
  programs = answer.value;
  const select = $("program");
  const chosen = select.value;
  select.replaceChildren(...programs.map((program) => new Option(program.name, program.name)));
  if (programs.some((program) => program.name === chosen)) select.value = chosen;
  select.disabled = programs.length === 0;
  $("run").disabled = programs.length === 0;
  showProgram();
}

function current() {
  return programs.find((program) => program.name === $("program").value);
}

function showProgram() {
  const program = current();
  if (!program) return;
  const streams = program.streams.length ? `streams ${program.streams.join(", ")}` : "streams no field";
  $("program-about").textContent = `${program.module}; ${streams}; ${program.endpoints.stream}`;
  form = new InputForm($("fields"), program.input_schema);
}

/** The exact request a run sends, for the snippets. */
function request(program, body) {
  return { url: serviceUrl(program.endpoints.stream), body, keyed: keysOn || Boolean(apiKey()) };
}

function setRunning(running) {
  $("run").disabled = running;
  $("stop").disabled = !running;
  $("program").disabled = running;
}

async function start(event) {
  event.preventDefault();
  const program = current();
  if (!program || run) return;
  const { body, invalid } = form.read();
  if (invalid) {
    invalid.control.focus();
    return;
  }
  $("snippet").textContent = curl(request(program, body));
  view.start(program);
  run = { controller: new AbortController(), runId: null, lastEventId: null, retry: 1000, stopping: false };
  setRunning(true);
  try {
    await stream(program, body, run);
  } catch (error) {
    if (run.stopping) view.error({ code: "cancelled", message: "The run was stopped." });
    else view.error({ code: "network_error", message: `The stream broke: ${error.message}` });
  } finally {
    run = null;
    setRunning(false);
  }
}

async function stream(program, body, current) {
  let response = await post(program.endpoints.stream, body, {
    signal: current.controller.signal, accept: "text/event-stream",
  });
  current.runId = response.headers.get("X-Run-ID");
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401) askForKey(error.message);
    else if (error.code === "invalid_input") {
      view.error(error, "See the fields marked above.");
      form.showServerErrors(error.fields)?.control.focus();
    } else view.error(error);
    return;
  }
  // A connection that breaks mid-run is followed again from the last event seen
  // (GET /v1/runs/{run}/events with Last-Event-ID): no gap, no duplicate, no second
  // run. Each try waits the stream's `retry` milliseconds, doubled after each failure.
  for (let attempt = 0; ; attempt += 1) {
    try {
      if (await follow(response, current)) return;
    } catch (error) {
      if (current.stopping || !current.runId || attempt >= RESUMES) throw error;
    }
    if (current.stopping || !current.runId || attempt >= RESUMES) break;
    view.note(`The connection broke; following the run again (${attempt + 1} of ${RESUMES}).`);
    response = await resume(current, current.retry * 2 ** attempt);
    if (response.status >= 400) {
      view.error(await errorOf(response));
      return;
    }
  }
  view.error({ code: "cut_off", message: "The stream ended before the run did." });
}

const RESUMES = 3;

/** Show the events of `response` until the run's end (true) or the stream's (false). */
async function follow(response, current) {
  for await (const { event, id, retry, data } of readEvents(response)) {
    if (id) current.lastEventId = id;
    if (retry !== null) current.retry = retry;
    if (event === "token") view.token(data);
    else if (event === "status") view.status(data);
    else if (event === "prediction") view.prediction(data);
    else if (event === "done") {
      view.done();
      return true;
    } else if (event === "error") {
      view.error(data);
      return true;
    }
  }
  return false;
}

/** The run's stream again after `delay` ms; a failed connection counts as an empty one. */
async function resume(current, delay) {
  await new Promise((resolve) => setTimeout(resolve, delay));
  const headers = { ...authHeaders(), accept: "text/event-stream" };
  if (current.lastEventId) headers["Last-Event-ID"] = current.lastEventId;
  const path = `/v1/runs/${encodeURIComponent(current.runId)}/events`;
  try {
    return await fetch(serviceUrl(path), { headers, signal: current.controller.signal });
  } catch (error) {
    if (current.stopping) throw error;
    return new Response("");  // empty: the loop above tries again
  }
}

/** Cancel the run on the service (which ends its stream with `cancelled`); abort if that fails. */
async function stop() {
  if (!run || run.stopping) return;
  const current = run;
  current.stopping = true;
  $("stop").disabled = true;
  if (current.runId) {
    try {
      const response = await post(`/v1/runs/${encodeURIComponent(current.runId)}/cancel`);
      if (response.ok) return;
    } catch {
      // fall through: closing the stream ends the run after its grace period
    }
  }
  current.controller.abort();
}

async function copy(kind) {
  const program = current();
  const { body, invalid } = form.read();
  if (!program || invalid) {
    $("copy-note").textContent = "Fix the inputs first.";
    return;
  }
  const text = (kind === "curl" ? curl : python)(request(program, body));
  $("snippet").textContent = text;
  try {
    await navigator.clipboard.writeText(text);
    $("copy-note").textContent = `Copied as ${kind === "curl" ? "curl" : "Python"}.`;
  } catch {
    getSelection().selectAllChildren($("snippet"));
    $("copy-note").textContent = "The browser refused the clipboard: the text is selected, copy it with Ctrl+C.";
  }
}

$("inputs").addEventListener("submit", start);
// From the keyboard: Ctrl+Enter (or Cmd+Enter) runs from any field, Escape stops.
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !run && !$("run").disabled) {
    event.preventDefault();
    $("inputs").requestSubmit($("run"));
  } else if (event.key === "Escape" && run) {
    stop();
  }
});
$("stop").addEventListener("click", stop);
$("program").addEventListener("change", showProgram);
$("copy-curl").addEventListener("click", () => copy("curl"));
$("copy-python").addEventListener("click", () => copy("python"));
$("key-use").addEventListener("click", () => {
  setApiKey($("api-key").value.trim());
  loadPrograms();
});
$("api-key").addEventListener("keydown", (event) => {
  if (event.key === "Enter") $("key-use").click();
});
/** Ask for a key first when the service has keys on; then list the programs. */
async function begin() {
  const config = await getJson("/playground/config.json").catch(() => ({ ok: false }));
  keysOn = config.ok && config.value.api_keys;
  if (config.ok && config.value.title) {
    $("service-title").textContent = `${config.value.title}: playground`;
    document.title = `${config.value.title}: playground`;
  }
  if (keysOn && !apiKey()) {
    $("key-box").hidden = false;
    $("api-key").focus();
    return;
  }
  $("key-box").hidden = !keysOn;
  $("api-key").value = apiKey();
  await loadPrograms();
}

begin();
