// One number's timeline: the MT sent to it and the MO it sent, newest first, with what the
// gateway knows of it. An admin sees every account, the learned operator, the block's evidence,
// the do-not-call list and consents; a customer's key (/v1/numbers/{n}) its own account's part.

import { ApiFailure, get } from "./api.js";
import { facts, failure, field, h, messageLink, money, replace, status, table, time } from "./dom.js";

function searchForm(value) {
  const input = h("input", { name: "number", inputmode: "numeric", value: value || "", placeholder: "46701234567", required: true });
  return h("form", { class: "filters", role: "search", onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = "#/number/" + encodeURIComponent(input.value.trim());
  } }, field("Number", input), h("div", { class: "actions" }, h("button", { type: "submit" }, "Look up")));
}

function entries(list) {
  return list.map((e) => `${e.account ? e.account + ": " : ""}since ${e.added_at.slice(0, 10)} (${e.source})`).join("; ");
}

// What put an operator first (GET /v1/admin/numbers/{n} "choice", SPEC §7)
const WHY = { lookup: "a look-up's answer", number: "its own history", block: "its number block", price: "price" };

function knowledge(n, who) {
  if (!who.admin) {
    return facts([
      ["Stop list", n.stop_list.length ? entries(n.stop_list) : "not on this account's stop list"],
      ["Consent", n.consent ? "given " + n.consent.added_at.slice(0, 10) : "none recorded"],
    ]);
  }
  const learned = n.learned;
  const block = n.block || {};
  const chances = Object.entries(block.chances || {}).map(([op, p]) => `${op} ${Math.round(p * 100)}%`).join(", ");
  return facts([
    ["Learned operator", learned && learned.operator ? learned.operator : "none yet"],
    ["Recent failures", learned && learned.failures.length
      ? learned.failures.map((f) => `${f.operator} at ${f.at.slice(0, 19).replace("T", " ")}${f.counts ? "" : " (aged out)"}`).join("; ") : ""],
    ["Number block", block.basis ? `prefix ${block.basis}: ${chances}` : "not enough evidence: cheapest first"],
    ["Next message goes", (n.choice || []).map((c) => h("div", {},
      `${c.profile}: ${c.order.join(" → ")} (${WHY[c.because] || c.because}${c.prefix ? " " + c.prefix : ""})`))],
    ["Stop list", n.stop_list.length ? entries(n.stop_list) : "on no account's stop list"],
    ["Do not call", n.do_not_call ? entries([n.do_not_call]) : "no"],
    ["Consents", n.consents.length ? n.consents.map((c) => `${c.account} (${c.added_at.slice(0, 10)})`).join(", ") : "none"],
  ]);
}

export async function numberTimeline(main, route, who) {
  const number = route.arg;
  if (!number) {
    replace(main, h("h1", {}, "Number"), h("p", {}, "Everything sent to and received from one number."), searchForm(""));
    return;
  }
  let n;
  try {
    n = await get((who.admin ? "/v1/admin/numbers/" : "/v1/numbers/") + encodeURIComponent(number));
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401) throw e;
    // the form stays, with what was typed, to correct it and try again
    replace(main, h("h1", {}, "Number"), searchForm(number), failure(e));
    return;
  }
  const rows = n.messages.map((m) => ({ at: m.created_at, kind: "MT", m }))
    .concat(n.mo.map((mo) => ({ at: mo.received_at, kind: "MO", mo })))
    .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  const more = n.next_cursor || n.mo_next_cursor;
  replace(main,
    h("h1", {}, "Number ", h("code", {}, n.number)),
    searchForm(n.number),
    knowledge(n, who),
    table("MT and MO, newest first", [
      ["At", (r) => time(r.at)],
      ["Way", (r) => h("span", { class: "way way-" + r.kind.toLowerCase() }, r.kind)],
      ["Message", (r) => (r.m ? messageLink(r.m.id) : r.mo.keyword ? "keyword " + r.mo.keyword : "")],
      ...(who.admin ? [["Account", (r) => (r.m ? r.m.account : r.mo.account) || "none"]] : []),
      ["Status", (r) => (r.m ? status(r.m.status) : r.mo.outcome || "received")],
      ["Operator", (r) => (r.m ? r.m.operator || "" : r.mo.operator || "")],
      ["Cost", (r) => (r.m ? money(r.m.cost) : "")],
      ["Text", (r) => h("span", { class: "text" }, r.m ? r.m.text : r.mo.text)],
    ], rows, "Nothing sent to or received from this number."),
    more ? h("p", { class: "empty" }, "Older messages exist: filter the message log by this number to page through them.") : "");
}
