// Building the page: elements from data, never HTML from strings (message texts, MO and
// receipt texts come from phones and customers; textContent keeps them text).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// "2026-12-04T20:01:02.345Z" -> "2026-12-04 20:01:02" (times are UTC everywhere in the console).
export function when(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", "");
}

// A <time> element: the short form shown, the whole RFC 3339 value kept.
export function time(iso) {
  return iso ? h("time", { datetime: iso }, when(iso)) : "";
}

export function status(value) {
  return value ? h("span", { class: "status s-" + value }, value.replace(/_/g, " ")) : "";
}

// An amount as the API gives it: every decimal it has (a balance of 102.00001 is not 102.00), and
// at least two (102 shows as 102.00: zeros added, nothing rounded away).
export function money(value) {
  if (value === null || value === undefined || value === "") return "";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  // the shortest decimal that reads back as this number (what the gateway's JSON wrote), without
  // the exponent JavaScript uses for very small and very large numbers
  let text = String(n);
  if (/e/i.test(text)) text = Math.abs(n) < 1 ? n.toFixed(20).replace(/0+$/, "") : BigInt(Math.round(n)).toString();
  const [whole, decimals = ""] = text.split(".");
  return whole + "." + decimals.padEnd(2, "0");
}

export const link = (href, text) => h("a", { href }, text);
// The whole id: the messages of one request share their first 12 characters (the time) and differ
// after them, so any shortening would make them look alike.
export const messageLink = (id) => link("#/message/" + encodeURIComponent(id), h("code", { class: "id" }, id));
export const numberLink = (n) => (n ? link("#/number/" + encodeURIComponent(n), n) : "");

// A table with a caption; columns are [heading, (row) => cell].
export function table(caption, columns, rows, empty = "Nothing to show.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "scroll" },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map(([head]) => h("th", { scope: "col" }, head)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([head, cell]) =>
        h("td", { "data-label": head }, cell(row))))))));
}

// A definition list from [term, value] pairs, skipping empty values.
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== "" && v !== null && v !== undefined)
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function field(label, input) {
  const id = "f-" + label.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

export function select(name, options, value) {
  return h("select", { name }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

let noticeTimer = null;
// A short message in the polite live region, read out by screen readers too.
export function notify(text, kind = "ok") {
  const el = document.getElementById("notice");
  el.className = "notice " + kind;
  el.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.textContent = ""; el.className = "notice"; }, 6000);
}

export function failure(e) {
  return h("p", { class: "error", role: "alert" }, e.message + (e.code ? ` (${e.code})` : ""));
}
