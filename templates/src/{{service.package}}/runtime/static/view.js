// What a run shows while it streams: each listened field's text, ReAct's steps,
// the status timeline, the prediction as typed values, errors, and timings.
//
// Every text from the service (a field's tokens, a status message, an output,
// an error) is set with textContent, never parsed as HTML.

import { describeType, el } from "./form.js";

const THOUGHT = "next_thought";

/** Milliseconds as `1.23 s` or `850 ms`. */
function duration(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export class RunView {
  constructor(elements) {
    this.$ = elements; // alert, timings, streams, timeline, outputs
  }

  /** Clear the view for a new run of `program` (an entry of GET /v1/programs). */
  start(program) {
    this.program = program;
    this.began = performance.now();
    this.firstToken = null;
    this.finished = null;
    this.tokens = 0;
    this.steps = [];
    this.lastKey = null;
    this.regions = new Map();
    this.$.alert.replaceChildren();
    this.$.timeline.replaceChildren();
    this.$.outputs.replaceChildren(el("p", { class: "hint" }, "Waiting for the prediction…"));
    const outputs = program.output_schema.properties ?? {};
    const fields = program.streams.map((stream) => stream.split(".").pop());
    this.$.streams.replaceChildren(
      ...program.streams.map((stream) => {
        const field = stream.split(".").pop();
        // A field listened on two predictors is named by both; otherwise by its name alone.
        const name = fields.filter((other) => other === field).length > 1 ? stream : field;
        const region = this.streamRegion(stream, name, program.module === "ReAct" && field === THOUGHT, field in outputs);
        this.regions.set(stream, region);
        return region.element;
      }),
    );
    if (program.module === "ReAct" && !this.stepsRegion()) {
      const region = this.streamRegion("", "Steps", true, false);  // from status events alone
      this.regions.set("", region);
      this.$.streams.append(region.element);
    }
    this.showTimings("running");
  }

  streamRegion(stream, name, steps, isOutput) {
    const id = `stream-${stream.replace(/\W/g, "-") || "steps"}`;
    const heading = el("h3", { id: `${id}-heading` }, name);
    const note = steps ? "ReAct's steps: each thought, the tool it called and what the tool said."
      : isOutput ? "An output, token by token." : "Streamed on each call.";
    const body = steps ? el("ol", { class: "steps" }) : el("p", { class: "tokens" });
    const element = el("section", { class: "stream", "aria-labelledby": heading.id, "aria-live": "polite" },
      heading, el("p", { class: "hint" }, note), body);
    return { element, body, steps };
  }

  stepsRegion() {
    return [...this.regions.values()].find((region) => region.steps);
  }

  /** The ReAct step events go to now: a new one when a thought starts or a tool follows a tool. */
  step(startsThought, startsTool) {
    let current = this.steps.at(-1);
    if (!current || (startsThought && this.lastKey !== "thought") || (startsTool && current.tool)) {
      const region = this.stepsRegion();
      const number = this.steps.length + 1;
      const thought = el("p", { class: "thought" });
      const item = el("li", { class: "step" }, el("h4", {}, `Step ${number}`),
        el("p", { class: "label" }, "Thought"), thought);
      region.body.append(item);
      current = { item, thought, tool: null, calls: new Map() };
      this.steps.push(current);
    }
    return current;
  }

  token(data) {
    this.tokens += 1;
    this.firstToken ??= performance.now();
    const stream = `${data.predictor}.${data.field}`;
    const region = this.regions.get(stream);
    if (region?.steps) {
      this.step(true, false).thought.append(data.chunk);
      this.lastKey = "thought";
    } else if (region) {
      region.body.append(data.chunk);
      this.lastKey = stream;
    }
    this.showTimings("running");
  }

  status(data) {
    const at = duration(performance.now() - this.began);
    const item = el("li", { class: `event hook-${data.hook ?? "other"}` },
      el("span", { class: "at" }, at),
      el("span", { class: "hook" }, data.hook ?? "status"),
      data.tool ? el("span", { class: "tool" }, data.tool) : null,
      el("span", { class: "message" }, data.message ?? ""),
      data.args ? el("code", { class: "args" }, data.args) : null);
    this.$.timeline.append(item);
    if (this.stepsRegion() && data.tool && data.hook) this.toolEvent(data);
    this.lastKey = "status";
  }

  toolEvent(data) {
    if (data.hook === "tool_start") {
      const current = this.step(false, true);
      current.tool = data.tool;
      current.item.append(el("p", { class: "label" }, "Tool"),
        el("p", { class: "tool-call" }, el("strong", {}, data.tool), " ", data.args ?? data.message ?? ""));
      if (data.call_id) current.calls.set(data.call_id, current);
    } else if (data.hook === "tool_end" || data.hook === "tool_error") {
      const current = this.steps.find((step) => step.calls.has(data.call_id)) ?? this.step(false, false);
      current.item.append(el("p", { class: "label" }, data.hook === "tool_error" ? "Tool failed" : "Observation"),
        el("p", { class: data.hook === "tool_error" ? "observation failed" : "observation" }, data.output ?? data.message ?? ""));
    }
  }

  prediction(data) {
    const schema = this.program.output_schema;
    const properties = schema.properties ?? {};
    const rows = Object.entries(data.outputs ?? {}).flatMap(([name, value]) => {
      const type = properties[name] ? describeType(properties[name], schema.$defs ?? {}) : "";
      return [el("dt", {}, name, el("span", { class: "type" }, type)), el("dd", {}, typedValue(value))];
    });
    this.$.outputs.replaceChildren(...rows);
  }

  done() {
    this.finished = performance.now();
    this.showTimings("done");
  }

  /** A passing remark on the run, such as a reconnection, in the status timeline. */
  note(message) {
    this.status({ hook: "note", tool: null, message });
  }

  /** A failed run: an error event, or an error response before the stream began. */
  error({ code, message }, advice = "") {
    this.finished = performance.now();
    const cancelled = code === "cancelled";
    this.$.alert.replaceChildren(
      el("p", { class: cancelled ? "notice" : "problem" },
        el("strong", {}, cancelled ? "Stopped" : "Error"), " ",
        el("code", { class: "code" }, code), " ", message ?? ""),
      advice ? el("p", {}, advice) : null,
    );
    if (this.$.outputs.querySelector(".hint")) this.$.outputs.replaceChildren(el("p", { class: "hint" }, "No prediction."));
    if (this.program) this.showTimings(cancelled ? "stopped" : "failed");
  }

  showTimings(state) {
    const now = this.finished ?? performance.now();
    const rows = [
      ["State", state],
      ["First token", this.firstToken === null ? "—" : duration(this.firstToken - this.began)],
      ["Total", state === "running" ? `${duration(now - this.began)}…` : duration(now - this.began)],
      ["Tokens", String(this.tokens)],
    ];
    this.$.timings.replaceChildren(...rows.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  }
}

/** An output value as what it is: text, a number, a boolean, empty, or a JSON structure. */
export function typedValue(value) {
  if (value === null || value === undefined) return el("span", { class: "value null" }, "null (empty)");
  if (typeof value === "string") return el("p", { class: "value string" }, value);
  if (typeof value === "number") return el("data", { class: "value number", value: String(value) }, String(value));
  if (typeof value === "boolean") return el("span", { class: "value boolean" }, String(value));
  const compact = JSON.stringify(value);  // short values on one line, longer ones indented
  return el("pre", { class: "value json" }, compact.length <= 72 ? compact : JSON.stringify(value, null, 2));
}
