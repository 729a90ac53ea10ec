// The gateway's JSON API as the console calls it: one bearer key, kept for this browser tab only
// (sessionStorage), and one error shape. What a key may read is the server's decision: an admin
// key reaches /v1/admin/*, a customer's key its own account's /v1/* and nothing else.

const KEY = "smsgw.key";

export class ApiFailure extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function savedKey() {
  return sessionStorage.getItem(KEY);
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

export async function call(method, path, body, key = savedKey()) {
  const headers = { Authorization: `Bearer ${key}` };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiFailure(0, "network", "The gateway did not answer: is it running?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    throw new ApiFailure(response.status, err.code || "http_" + response.status,
      err.message || `The gateway answered ${response.status}.`, err.field);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);

// Which key is this? An admin key reads the accounts list; a customer's key is refused there
// (403) and reads its own account instead; an unknown key is refused everywhere (401).
export async function signIn(key) {
  try {
    await call("GET", "/v1/admin/accounts", undefined, key);
    sessionStorage.setItem(KEY, key);
    return { admin: true, account: null };
  } catch (e) {
    if (!(e instanceof ApiFailure) || e.status !== 403) throw e;
  }
  const mine = await call("GET", "/v1/account", undefined, key);
  sessionStorage.setItem(KEY, key);
  return { admin: false, account: mine.account };
}

// Query strings from a plain object, leaving out empty values.
export function qs(params) {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") out.set(k, v);
  }
  const s = out.toString();
  return s ? "?" + s : "";
}

// The cursor to load more from, or null when nothing follows. A look-up's next_cursor follows every
// full page, an exactly full last one too (and a customer's /v1/inbound gives one after every
// page, to poll from), so after a full page one item more is asked for (probe(cursor): the
// same look-up from that cursor, limit 1) to know.
export async function cursorForMore(page, size, probe) {
  if (!page.next_cursor || page.messages.length < size) return null;
  return (await get(probe(page.next_cursor))).messages.length ? page.next_cursor : null;
}
