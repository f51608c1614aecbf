// The input form of a program, built from its request's JSON Schema.
//
// One control per input field, labelled with the field's name: a text area for
// text, a number input for numbers, a checkbox for a boolean, a select for a
// Literal, and a JSON editor (checked as you type) for lists, dicts and DSPy's
// Image and History. An optional field (`T | None`) may be left empty: it is
// then left out of the request, and the service uses its default.

/** Create an element with attributes and children (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

// What DSPy's own input types expect, shown beside their JSON editors.
const DSPY_TYPES = {
  Image: { sample: { url: "" },
           hint: "dspy.Image: {\"url\": ...}, a web address or a data: URL (or choose a file)." },
  History: { sample: { messages: [] },
             hint: "dspy.History: {\"messages\": [...]}, earlier turns as objects of the signature's fields." },
};

/** The schema of a field without its `| None`, and whether it may be left empty. */
function unwrap(schema, defs) {
  let optional = false;
  let inner = schema;
  const options = schema.anyOf ?? schema.oneOf;
  if (options) {
    const rest = options.filter((option) => option.type !== "null");
    optional = rest.length < options.length;
    inner = rest.length === 1 ? rest[0] : { anyOf: rest };
  }
  let dspyType = null;
  if (inner.$ref) {
    const name = inner.$ref.split("/").pop();
    dspyType = name in DSPY_TYPES ? name : null;
    inner = defs[name] ?? {};
  }
  return { inner, optional, dspyType };
}

/** The kind of control for a field's schema. */
function kindOf(inner, dspyType) {
  if (dspyType) return "json";
  if (Array.isArray(inner.enum)) return "choice";
  if (inner.type === "string") return "text";
  if (inner.type === "integer") return "integer";
  if (inner.type === "number") return "number";
  if (inner.type === "boolean") return "boolean";
  return "json";
}

// JSON Schema's type names as the spec writes them (Python's).
const PYTHON_NAMES = { string: "str", integer: "int", number: "float", boolean: "bool", null: "None" };

/** How a schema reads to a person, in the spec's words: `list[str]`, `dict[str, float]`, `one of en, de`. */
export function describeType(schema, defs = {}) {
  const { inner, optional, dspyType } = unwrap(schema, defs);
  let text;
  if (dspyType) text = dspyType;
  else if (Array.isArray(inner.enum)) text = `one of ${inner.enum.join(", ")}`;
  else if (inner.type === "array") text = `list[${inner.items ? describeType(inner.items, defs) : "any"}]`;
  else if (inner.type === "object" && inner.additionalProperties)
    text = `dict[str, ${describeType(inner.additionalProperties, defs)}]`;
  else if (inner.anyOf) text = inner.anyOf.map((option) => describeType(option, defs)).join(" | ");
  else text = PYTHON_NAMES[inner.type] ?? inner.type ?? "any";
  return optional ? `${text}, optional` : text;
}

/** One field's control: its element, and how to read a JSON value from it. */
class Field {
  constructor(name, schema, required, defs) {
    const { inner, optional, dspyType } = unwrap(schema, defs);
    this.name = name;
    this.optional = optional || !required;
    this.inner = inner;
    this.kind = kindOf(inner, dspyType);
    this.dspyType = dspyType;
    this.id = `field-${name}`;
    this.error = el("p", { id: `${this.id}-error`, class: "field-error" });
    const notes = [describeType(schema, defs)];
    if (dspyType) notes.push(DSPY_TYPES[dspyType].hint);
    if (schema.description) notes.push(schema.description);
    if (this.optional) notes.push("Leave empty to leave it out.");
    this.hint = el("p", { id: `${this.id}-hint`, class: "hint" }, notes.join(" — "));
    const initial = schema.default ?? inner.default;
    this.control = this.makeControl(initial, dspyType);
    this.control.id = this.id;
    this.control.name = name;
    this.control.setAttribute("aria-describedby", `${this.hint.id} ${this.error.id}`);
    const label = el("label", { for: this.id }, name);
    const picker = dspyType === "Image" ? this.makePicker() : null;
    this.element = el("div", { class: `field field-${this.kind}` }, label, this.control, picker, this.hint, this.error);
    if (this.kind === "boolean" && !this.optional) this.element.classList.add("inline");
  }

  makeControl(initial, dspyType) {
    switch (this.kind) {
      case "choice": {
        const select = el("select");
        if (this.optional) select.append(el("option", { value: "" }, "(empty)"));
        for (const value of this.inner.enum) {
          select.append(el("option", { value: JSON.stringify(value) }, String(value)));
        }
        if (initial !== undefined && initial !== null) select.value = JSON.stringify(initial);
        return select;
      }
      case "boolean": {
        if (this.optional) {  // three states: true, false, or left out
          const select = el("select");
          for (const [value, text] of [["", "(empty)"], ["true", "true"], ["false", "false"]]) {
            select.append(el("option", { value }, text));
          }
          if (typeof initial === "boolean") select.value = String(initial);
          return select;
        }
        return el("input", { type: "checkbox", checked: initial === true });
      }
      case "integer":
      case "number":
        return el("input", {
          type: "number", step: this.kind === "integer" ? "1" : "any", inputmode: "decimal",
          value: typeof initial === "number" ? String(initial) : null,
        });
      case "text":
        return el("textarea", { rows: "3", spellcheck: "true" }, typeof initial === "string" ? initial : "");
      default: {
        let sample = initial;
        if (sample === undefined || sample === null) {
          sample = dspyType ? DSPY_TYPES[dspyType].sample : this.inner.type === "array" ? [] : {};
          if (this.optional) sample = undefined;
        }
        const editor = el("textarea", { rows: "3", spellcheck: "false", class: "json" },
          sample === undefined ? "" : JSON.stringify(sample));
        editor.addEventListener("input", () => this.validate());
        return editor;
      }
    }
  }

  /** A file input that puts the chosen picture into the editor as a data: URL. */
  makePicker() {
    const picker = el("input", { type: "file", accept: "image/*", "aria-label": `${this.name}: choose a picture file` });
    picker.addEventListener("change", () => {
      const [file] = picker.files;
      if (!file) return;
      const reader = new FileReader();
      reader.addEventListener("load", () => {
        this.control.value = JSON.stringify({ url: reader.result });
        this.validate();
      });
      reader.readAsDataURL(file);
    });
    return el("div", { class: "picker" }, picker);
  }

  /** The field's value: `{value}`, `{omit: true}` when left empty, or `{error}`. */
  read() {
    const control = this.control;
    const raw = control.type === "checkbox" ? null : control.value;
    const empty = raw !== null && raw.trim() === "";
    if (empty && this.optional) return { omit: true };
    switch (this.kind) {
      case "text":
        return { value: raw };
      case "choice":
        return { value: JSON.parse(raw) };
      case "boolean":
        return control.type === "checkbox" ? { value: control.checked } : { value: raw === "true" };
      case "integer":
      case "number": {
        const number = Number(raw);
        if (empty || !Number.isFinite(number)) return { error: "Enter a number." };
        if (this.kind === "integer" && !Number.isInteger(number)) return { error: "Enter a whole number." };
        return { value: number };
      }
      default:
        return this.parseJson(raw);
    }
  }

  parseJson(raw) {
    let value;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      return { error: `Not valid JSON: ${error.message}` };
    }
    const expected = this.inner.type;
    const actual = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
    if ((expected === "array" || expected === "object") && actual !== expected) {
      return { error: `Expected a JSON ${expected === "array" ? "list" : "object"}, got ${actual}.` };
    }
    if (this.dspyType === "Image" && !value?.url) {
      return { error: "Give the picture's URL, or choose a file." };
    }
    return { value };
  }

  /** Show this field's problem (or none); whether it has none. */
  validate() {
    const result = this.read();
    this.showError(result.error ?? "");
    return !result.error;
  }

  showError(message) {
    this.error.textContent = message;
    if (message) this.control.setAttribute("aria-invalid", "true");
    else this.control.removeAttribute("aria-invalid");
  }
}

/** The form of one program: its fields, read into a request body. */
export class InputForm {
  constructor(container, inputSchema) {
    const defs = inputSchema.$defs ?? {};
    const required = new Set(inputSchema.required ?? []);
    this.fields = Object.entries(inputSchema.properties ?? {}).map(
      ([name, schema]) => new Field(name, schema, required.has(name), defs),
    );
    container.replaceChildren(...this.fields.map((field) => field.element));
  }

  /** `{body}` when every field reads, else `{invalid}`: the first field with a problem. */
  read() {
    const body = {};
    let invalid = null;
    for (const field of this.fields) {
      const result = field.read();
      field.showError(result.error ?? "");
      if (result.error) invalid ??= field;
      else if (!result.omit) body[field.name] = result.value;
    }
    return invalid ? { invalid } : { body };
  }

  /** Show the service's `invalid_input` field errors beside their fields. */
  showServerErrors(fieldErrors) {
    let first = null;
    for (const item of fieldErrors ?? []) {
      const name = item.loc?.[1];
      const field = this.fields.find((candidate) => candidate.name === name);
      if (!field) continue;
      field.showError(item.message);
      first ??= field;
    }
    return first;
  }
}
