// The CSV export arrives in chunks (one request each, following X-Next-Cursor); these join
// them into one file. No DOM: tests run it in Node.

/** The header line of the first chunk (without a byte-order mark or a CR). */
export function headerOf(text) {
  return text.replace(/^\ufeff/, "").split("\n", 1)[0].replace(/\r$/, "");
}

/** A later CSV chunk without the header line the first one had (in case the API repeats it). */
export function withoutRepeatedHeader(text, header) {
  const body = text.replace(/^\ufeff/, "");
  if (!header) return text;
  const end = body.indexOf("\n");
  const first = (end < 0 ? body : body.slice(0, end)).replace(/\r$/, "");
  return first === header ? body.slice(end < 0 ? body.length : end + 1) : body;
}
