// "Copy as curl" and "Copy as Python": the exact request the page sends.
//
// The API key is not written into them: they read it from the API_KEY
// environment variable, so a copied or shared snippet never carries a secret.

/** `text` quoted for a POSIX shell. */
function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** A JSON value as a Python literal (JSON's strings are valid Python strings). */
function pythonLiteral(value, indent = "") {
  if (value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value !== "object") return JSON.stringify(value);
  const inner = `${indent}    `;
  const items = Array.isArray(value)
    ? value.map((item) => pythonLiteral(item, inner))
    : Object.entries(value).map(([key, item]) => `${JSON.stringify(key)}: ${pythonLiteral(item, inner)}`);
  const [open, close] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  if (!items.length) return `${open}${close}`;
  return `${open}\n${items.map((item) => `${inner}${item},`).join("\n")}\n${indent}${close}`;
}

/** The request as a curl command that prints the stream as it comes. */
export function curl({ url, body, keyed }) {
  const lines = [`curl -N -X POST ${shellQuote(url)}`, "-H 'content-type: application/json'"];
  if (keyed) lines.push('-H "X-API-Key: $API_KEY"');
  lines.push(`-d ${shellQuote(JSON.stringify(body))}`);
  return lines.join(" \\\n  ");
}

/** The request as a Python script (httpx) that prints each event's lines. */
export function python({ url, body, keyed }) {
  return [
    "import httpx" + (keyed ? "\nimport os" : ""),
    "",
    `url = ${JSON.stringify(url)}`,
    `body = ${pythonLiteral(body)}`,
    keyed ? 'headers = {"X-API-Key": os.environ["API_KEY"]}' : "headers = {}",
    "with httpx.stream(\"POST\", url, json=body, headers=headers, timeout=None) as response:",
    "    for line in response.iter_lines():",
    "        print(line)",
  ].join("\n");
}
