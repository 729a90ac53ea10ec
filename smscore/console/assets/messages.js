// The message log (filters, live) and one message's timeline (every event, attempt, operator,
// cost and receipt text). An admin key reads /v1/admin/messages; a customer's key
// /v1/messages/search and /v1/messages/{id}, which answer for its own account only.

import { cursorForMore, get, qs } from "./api.js";
import { failure, facts, field, h, messageLink, money, numberLink, replace, select, status, table, time } from "./dom.js";

export const STATUSES = ["scheduled", "pending_approval", "paused", "queued", "submitted", "buffered",
  "delivered", "failed", "expired", "unknown", "stopped", "rejected"];
const LIVE_EVERY_MS = 3000;

// datetime-local "2026-12-04T20:00" (read as UTC) <-> RFC 3339
const toRfc = (v) => (v ? v + ":00Z" : "");
const fromRfc = (v) => (v ? v.replace(/:\d\d(\.\d+)?Z$/, "") : "");

function filtersForm(route, who) {
  const p = route.params;
  const inputs = {
    status: select("status", [["", "any"], ...STATUSES.map((s) => [s, s.replace(/_/g, " ")])], p.get("status") || ""),
    to: h("input", { name: "to", inputmode: "numeric", value: p.get("to") || "", placeholder: "46701234567" }),
    since: h("input", { name: "since", type: "datetime-local", value: fromRfc(p.get("since")) }),
    until: h("input", { name: "until", type: "datetime-local", value: fromRfc(p.get("until")) }),
  };
  if (who.admin) {
    inputs.account = h("input", { name: "account", value: p.get("account") || "" });
    inputs.operator = h("input", { name: "operator", value: p.get("operator") || "" });
  }
  const form = h("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    const q = {};
    for (const [k, el] of Object.entries(inputs)) q[k] = k === "since" || k === "until" ? toRfc(el.value) : el.value.trim();
    location.hash = "#/messages" + qs(q);
  } },
  who.admin ? field("Account", inputs.account) : "",
  field("Status", inputs.status), field("Number", inputs.to),
  who.admin ? field("Operator", inputs.operator) : "",
  field("Since (UTC)", inputs.since), field("Until (UTC)", inputs.until),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter"),
    h("a", { href: "#/messages", class: "button quiet" }, "Clear")));
  // On a phone the filters fold away (open when some are in use); on a wide screen they stay open.
  const inUse = [...p.values()].some(Boolean);
  return h("details", { class: "fold", open: inUse || window.matchMedia("(min-width: 700px)").matches },
    h("summary", {}, inUse ? "Filters (in use)" : "Filters"), form);
}

const PAGE = 50;

function query(route, who, cursor, limit = PAGE) {
  const q = {};
  for (const k of who.admin ? ["account", "status", "to", "operator", "since", "until"] : ["status", "to", "since", "until"]) {
    q[k] = route.params.get(k);
  }
  q.cursor = cursor;
  q.limit = limit;
  return (who.admin ? "/v1/admin/messages" : "/v1/messages/search") + qs(q);
}

const following = (route, who, page) => cursorForMore(page, PAGE, (cursor) => query(route, who, cursor, 1));

export function messageColumns(who) {
  return [
    ["Created", (m) => time(m.created_at)],
    ["Message", (m) => messageLink(m.id)],
    ...(who.admin ? [["Account", (m) => m.account]] : []),
    ["To", (m) => numberLink(m.to)],
    ["Status", (m) => status(m.status)],
    ["Operator", (m) => m.operator || ""],
    ["Cost", (m) => money(m.cost)],
    ["Parts", (m) => m.parts],
    ["Text", (m) => h("span", { class: "text clip" }, m.text)],
  ];
}

export async function messageLog(main, route, who) {
  let rows = [];
  let next = null;
  const list = h("div", { "aria-live": "off" });
  const live = h("input", { type: "checkbox", name: "live", checked: true });
  const more = h("button", { type: "button", class: "quiet", hidden: true, onclick: async () => {
    try {
      const page = await get(query(route, who, next));
      rows = rows.concat(page.messages);
      next = await following(route, who, page);
      draw();
    } catch (e) { replace(list, failure(e)); }
  } }, "Load more");
  const draw = () => {
    replace(list, table(`${rows.length} message${rows.length === 1 ? "" : "s"}, newest first`, messageColumns(who), rows,
      "No message matches these filters."));
    more.hidden = !next;
  };
  replace(main, h("h1", {}, "Messages"), filtersForm(route, who),
    h("p", { class: "live" }, h("label", {}, live, " Live: new messages and status changes appear every few seconds")),
    list, more);
  const first = await get(query(route, who));
  rows = first.messages;
  next = await following(route, who, first);
  draw();
  // Live: the first page again; newer messages go on top, known ones take their new status.
  const timer = setInterval(async () => {
    if (!live.checked || document.hidden) return;
    try {
      const page = await get(query(route, who));
      const fresh = new Map(page.messages.map((m) => [m.id, m]));
      const known = new Set(rows.map((m) => m.id));
      rows = page.messages.filter((m) => !known.has(m.id)).concat(rows.map((m) => fresh.get(m.id) || m));
      draw();
    } catch (e) { /* the next tick tries again; a lost key shows on the next page */ }
  }, LIVE_EVERY_MS);
  return () => clearInterval(timer);
}

export async function messageTimeline(main, route, who) {
  const id = route.arg;
  const m = await get((who.admin ? "/v1/admin/messages/" : "/v1/messages/") + encodeURIComponent(id));
  const attempts = m.events.filter((e) => e.status === "submitted" && e.operator).map((e) => e.operator);
  replace(main,
    h("h1", {}, "Message ", h("code", {}, m.id)),
    facts([
      ["Status", status(m.status)], ["Account", m.account], ["To", numberLink(m.to)], ["From", m.from],
      ["Text", h("span", { class: "text" }, m.text)], ["Parts", m.parts], ["Profile", m.profile],
      ["Operator", m.operator], ["Cost", money(m.cost)], ["Error", m.error], ["Reference", m.reference],
      ["Created", time(m.created_at)], ["Updated", time(m.updated_at)], ["Send at", time(m.send_at)],
      ["Attempts", attempts.length ? `${attempts.length}: ${attempts.join(" → ")}` : "none yet"],
    ]),
    table("Timeline: every change, oldest first", [
      ["At", (e) => time(e.at)],
      ["Status", (e) => status(e.status)],
      ["Operator", (e) => e.operator || ""],
      ["Detail", (e) => h("span", { class: "text" }, e.detail || "")],
    ], m.events, "No events."),
    h("p", {}, h("a", { href: "#/messages" }, "← Messages"), " · ", numberLink(m.to) && h("a", { href: "#/number/" + encodeURIComponent(m.to) }, "Everything to " + m.to)));
}
