// The operator's pages: the approval queue, binds, accounts (balance, top-up, pause/resume), the
// stop list and MO. Actions call the admin API and say what happened in the live region; the
// page is then read again, so what it shows is what the gateway stored.

import { ApiFailure, cursorForMore, get, post, qs } from "./api.js";
import { failure, facts, field, h, messageLink, money, notify, numberLink, replace, table, time } from "./dom.js";

const REFRESH_MS = 3000;
const PAGE = 50;

// Do an action, say what happened, and show the page again as the gateway now has it. ``what`` is
// the notice, or a function of the API's answer that gives it (called with null when refused).
async function act(what, call, redraw) {
  const said = typeof what === "function" ? what : () => what;
  try {
    notify(said(await call()));
  } catch (e) {
    notify(`${said(null)}: refused. ${e.message}`, "bad");
  }
  await redraw();
}

export async function approvals(main) {
  const list = h("div");
  const draw = async () => {
    const page = await get("/v1/admin/approvals?limit=100");
    replace(list, table(`${page.messages.length} held for approval, newest first`, [
      ["Held since", (m) => time(m.held_at)],
      ["Message", (m) => messageLink(m.id)],
      ["Account", (m) => m.account],
      ["To", (m) => numberLink(m.to)],
      ["Why", (m) => m.held_because || ""],
      ["Text", (m) => h("span", { class: "text" }, m.text)],
      ["Decide", (m) => h("div", { class: "row-actions" },
        h("button", { type: "button", "aria-label": `Approve ${m.id}`, onclick: () =>
          act(`Approved ${m.id}`, () => post(`/v1/admin/messages/${m.id}/approve`), draw) }, "Approve"),
        h("button", { type: "button", class: "danger", "aria-label": `Refuse ${m.id}`, onclick: () =>
          act(`Refused ${m.id}`, () => post(`/v1/admin/messages/${m.id}/refuse`), draw) }, "Refuse"))],
    ], page.messages, "No message is waiting for approval."));
  };
  replace(main, h("h1", {}, "Approvals"),
    h("p", {}, "Messages wait here when their text links to a site outside the account's approved_domains, " +
      "or when a request goes over the account's daily volume limit. Approve sends them (or schedules them, " +
      "when their send time is still ahead); Refuse ends them as stopped, and a prepaid account gets their " +
      "charge back."), list);
  await draw();
}

// Why an operator's link sends no faster than it does (GET /v1/admin/binds): no bind on this node
// (its cluster share: it joins, or other nodes hold them all), a back-off after the SMSC refused a
// submit for now, the cap the link holds itself to since the SMSC throttled it, the operator's
// configured tps, or nothing. Figures as the Submits/s column shows them.
export function pace(o) {
  if (o.binds === 0) return "no bind on this node (its cluster share)";
  const capped = o.paced_at === null || o.paced_at === undefined ? "" : `capped at ${o.paced_at.toFixed(1)}/s`;
  if (o.throttled_for > 0) {
    const left = (Math.ceil(o.throttled_for * 10) / 10).toFixed(1);  // 0.04 s left still says 0.1
    return `backing off for ${left} s after the SMSC refused` + (capped ? `, then ${capped}` : "");
  }
  if (capped) return `${capped} after throttling`;
  return o.tps ? `tps limit: ${o.tps}/s` : "no limit";
}

export async function binds(main) {
  const list = h("div");
  const draw = async () => {
    const { operators } = await get("/v1/admin/binds");
    const since = (o) => o.sessions.map((s) => s.since).filter(Boolean).sort()[0];
    const lastError = (o) => o.sessions.map((s) => s.last_error).filter(Boolean).sort((a, b) => (a.at < b.at ? 1 : -1))[0];
    replace(list,
      table("Operators", [
        ["Operator", (o) => o.operator],
        ["State", (o) => h("span", { class: "status " + (o.up ? "s-delivered" : "s-failed") }, o.up ? "up" : "down")],
        ["Since", (o) => time(since(o))],
        ["Last error", (o) => { const e = lastError(o); return e ? [time(e.at), " ", e.reason] : ""; }],
        ["Window in use", (o) => `${o.in_flight ?? 0} / ${o.window * o.sessions.filter((s) => s.transmits).length}`],
        ["Submits/s", (o) => (o.submits_per_second ?? 0).toFixed(1)],
        ["Pace", pace],
        ["Queued messages", (o) => o.queued_messages ?? 0],
        ["Queued parts", (o) => o.queued_parts],
        ["Address", (o) => `${o.host}:${o.port}${o.tls ? " (TLS)" : ""}`],
      ], operators, "No operator is configured."),
      table("Sessions", [
        ["Operator", (r) => r.o.operator],
        ["Session", (r) => `${r.s.session} (${r.o.bind})`],
        ["Bound", (r) => (r.s.bound ? "yes" : "no")],
        ["Since", (r) => time(r.s.since)],
        ["In flight", (r) => r.s.in_flight],
        ["Reconnect failures", (r) => r.s.reconnect_failures],
        ["Last error", (r) => (r.s.last_error ? [time(r.s.last_error.at), " ", r.s.last_error.reason] : "")],
      ], operators.flatMap((o) => o.sessions.map((s) => ({ o, s }))), "No session."));
  };
  replace(main, h("h1", {}, "Binds"), h("p", {}, "Each operator's SMPP sessions, read again every few seconds. " +
    "Pace says what holds an operator back: a back-off after the SMSC refused a submit for now, a cap after the SMSC " +
    "throttled it (ESME_RTHROTTLED, ESME_RMSGQFUL; the cap grows back), its tps, or nothing."), list);
  await draw();
  const timer = setInterval(() => { if (!document.hidden) draw().catch(() => {}); }, REFRESH_MS);
  return () => clearInterval(timer);
}

// A top-up adds to a prepaid balance; a negative amount corrects it (the API takes -1,000,000 to
// 1,000,000), and the notice says which it was; 0 would change nothing, so it is not sent.
function topupForm(name, redraw) {
  const amount = h("input", { name: "amount", inputmode: "decimal", size: 8, required: true, placeholder: "±amount",
    "aria-label": `Top-up amount for ${name}` });
  return h("form", { class: "inline", onsubmit: (ev) => {
    ev.preventDefault();
    const value = amount.value.trim();
    if (value !== "" && Number(value) === 0) {
      notify(`Balance of ${name} not changed: the amount is 0.`, "bad");
      amount.focus();
      return;
    }
    const what = /^-/.test(value) ? `Balance of ${name} lowered by ${value.slice(1)}` : `Topped up ${name} by ${value}`;
    act((answer) => (answer ? `${what}: the balance is now ${money(answer.balance)}` : `Changing the balance of ${name} by ${value}`),
      () => post(`/v1/admin/accounts/${name}/topup`, { amount: value }), redraw);
  } }, amount, h("button", { type: "submit" }, "Top up"));
}

export async function accountsPage(main, route, who) {
  if (!who.admin) {
    const a = await get("/v1/account");
    replace(main, h("h1", {}, "Account ", h("code", {}, a.account)), facts([
      ["Balance", money(a.balance)], ["Billing", a.billing], ["Paused", a.paused ? "yes" : "no"],
      ["Profile", a.profile], ["Senders", a.senders.join(", ")], ["Default sender", a.default_sender],
      ["Requests per second", a.tps ?? "no limit"], ["Daily volume limit", a.daily_volume_limit ?? "none"],
      ["Status callbacks to", a.callback_url],
    ]));
    return;
  }
  const list = h("div");
  const draw = async () => {
    const { accounts } = await get("/v1/admin/accounts");
    replace(list, table("Accounts", [
      ["Account", (a) => a.account],
      ["Billing", (a) => a.billing],
      ["Balance", (a) => money(a.balance)],
      ["State", (a) => h("span", { class: "status " + (a.paused ? "s-paused" : "s-delivered") }, a.paused ? "paused" : "sending")],
      ["Today", (a) => (a.daily_volume_limit === null ? "" : `${a.sent_today} / ${a.daily_volume_limit}`)],
      ["Pause", (a) => h("button", { type: "button", class: a.paused ? "" : "danger",
        "aria-label": `${a.paused ? "Resume" : "Pause"} ${a.account}`, onclick: () =>
          act(`${a.paused ? "Resumed" : "Paused"} ${a.account}`,
            () => post(`/v1/admin/accounts/${a.account}/${a.paused ? "resume" : "pause"}`), draw) },
      a.paused ? "Resume" : "Pause")],
      ["Top up", (a) => (a.billing === "prepaid" ? topupForm(a.account, draw) : "postpaid")],
    ], accounts, "No account is configured."));
  };
  replace(main, h("h1", {}, "Accounts"),
    h("p", {}, "A paused account's messages wait (status paused) and go when it is resumed."), list);
  await draw();
}

export async function stopList(main, route, who) {
  const p = route.params;
  const number = h("input", { name: "number", inputmode: "numeric", value: p.get("number") || "" });
  const account = h("input", { name: "account", value: p.get("account") || "" });
  const filters = h("form", { class: "filters", role: "search", onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = "#/stoplist" + qs({ number: number.value.trim(), account: who.admin ? account.value.trim() : "" });
  } }, field("Number", number), who.admin ? field("Account (* for do-not-call)", account) : "",
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Filter")));
  const path = who.admin ? "/v1/admin/stoplist" + qs({ number: p.get("number"), account: p.get("account"), limit: 100 })
    : "/v1/stoplist" + qs({ number: p.get("number"), limit: 100 });
  const change = who.admin ? changeForm(() => stopList(main, route, who)) : "";
  let page;
  try {
    page = await get(path);
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401) throw e;
    replace(main, h("h1", {}, "Stop list"), filters, failure(e), change);  // the filters stay, to try again
    return;
  }
  const more = (cursor, what) => (cursor ? h("p", { class: "empty" }, `More ${what} exist: filter by number${who.admin ? " or account" : ""}.`) : "");
  replace(main, h("h1", {}, "Stop list"), filters,
    table(`Stop list: ${page.entries.length} entr${page.entries.length === 1 ? "y" : "ies"} (messages to these numbers are stopped)`, [
      ["Number", (e) => numberLink(e.number)],
      ...(who.admin ? [["List", (e) => (e.list === "do_not_call" ? "do not call" : "stop: " + e.account)]] : []),
      ["Added", (e) => time(e.added_at)],
      ["Source", (e) => e.source],
    ], page.entries, "No stop-list entry."),
    more(page.next_cursor, "entries"),
    h("h2", {}, "Consents"),
    table(`${page.consents.length} consent${page.consents.length === 1 ? "" : "s"}: ` +
      `${who.admin ? "the account" : "this account"} may send to the number although it is on the do-not-call list or the stop list`, [
      ["Number", (c) => numberLink(c.number)],
      ...(who.admin ? [["Account", (c) => c.account]] : []),
      ["Added", (c) => time(c.added_at)],
    ], page.consents, "No consent."),
    more(page.consents_next_cursor, "consents"),
    change);
}

function changeForm(redraw) {
  const numbers = h("input", { name: "numbers", required: true, placeholder: "46701234567, 46707654321" });
  const account = h("input", { name: "account", placeholder: "empty: the do-not-call list" });
  const what = h("select", { name: "what" }, h("option", { value: "add" }, "add to the list"),
    h("option", { value: "remove" }, "remove from the list"), h("option", { value: "consent" }, "record consent (account)"),
    h("option", { value: "unconsent" }, "withdraw consent (account)"));
  return h("form", { class: "filters change", onsubmit: (ev) => {
    ev.preventDefault();
    const body = { numbers: numbers.value.split(/[\s,;]+/).filter(Boolean) };
    if (account.value.trim()) body.account = account.value.trim();
    if (what.value === "remove" || what.value === "unconsent") body.remove = true;
    if (what.value === "consent" || what.value === "unconsent") body.consent = true;
    act(`Stop list: ${what.value} ${body.numbers.join(", ")}`, () => post("/v1/admin/stoplist", body), redraw);
  } }, h("h2", {}, "Change"), field("Numbers", numbers), field("Account", account), field("Change", what),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Apply")));
}

export async function inbound(main, route, who) {
  let rows = [];
  let next = null;
  const list = h("div");
  const path = (cursor, limit = PAGE) => (who.admin ? "/v1/admin/inbound" : "/v1/inbound") + qs({ cursor, limit });
  const more = h("button", { type: "button", class: "quiet", hidden: true, onclick: () => load(next).catch((e) => replace(list, failure(e))) }, "Load more");
  const after = (page) => cursorForMore(page, PAGE, (cursor) => path(cursor, 1));
  const load = async (cursor) => {
    const page = await get(path(cursor));
    rows = rows.concat(page.messages);
    next = await after(page);
    replace(list, table(who.admin ? "MO, newest first" : "MO for this account's keywords, oldest first", [
      ["Received", (m) => time(m.received_at)],
      ["From", (m) => numberLink(m.from)],
      ["To", (m) => m.to],
      ["Keyword", (m) => m.keyword || ""],
      ...(who.admin ? [["Account", (m) => m.account || "none"], ["Outcome", (m) => m.outcome || ""], ["Operator", (m) => m.operator || ""]] : []),
      ["Text", (m) => h("span", { class: "text" }, m.text)],
    ], rows, "No MO yet."));
    more.hidden = !next;
  };
  replace(main, h("h1", {}, "MO"), list, more);
  await load(null);
}
