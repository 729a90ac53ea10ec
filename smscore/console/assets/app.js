// The console's shell: sign-in, the navigation, and which page the address (#/...) shows.
// Pages are functions (main, route, who) -> optional cleanup (a live page stops its polling).

import { ApiFailure, forget, savedKey, signIn } from "./api.js";
import { failure, field, h, replace } from "./dom.js";
import { messageLog, messageTimeline } from "./messages.js";
import { numberTimeline } from "./number.js";
import { accountsPage, approvals, binds, inbound, stopList } from "./ops.js";

const PAGES = {
  messages: { title: "Messages", page: messageLog },
  message: { title: "Message", page: messageTimeline, hidden: true },
  number: { title: "Number", page: numberTimeline },
  inbound: { title: "MO", page: inbound },
  approvals: { title: "Approvals", page: approvals, admin: true },
  binds: { title: "Binds", page: binds, admin: true },
  accounts: { title: "Accounts", page: accountsPage },
  stoplist: { title: "Stop list", page: stopList },
};

let who = null; // {admin, account} once signed in
let cleanup = null;

function parse() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const [name, ...rest] = path.split("/");
  return { name: name || "messages", arg: decodeURIComponent(rest.join("/")), params: new URLSearchParams(query) };
}

function nav(current) {
  const el = document.getElementById("nav");
  replace(el, h("ul", {}, Object.entries(PAGES)
    .filter(([, p]) => !p.hidden && (who.admin || !p.admin))
    .map(([name, p]) => h("li", {}, h("a", { href: "#/" + name, "aria-current": name === current ? "page" : false },
      name === "accounts" && !who.admin ? "Account" : p.title)))));
  el.hidden = false;
  document.getElementById("who").textContent = who.admin ? "admin" : "account " + who.account;
  document.getElementById("signout").hidden = false;
}

async function show() {
  if (cleanup) { cleanup(); cleanup = null; }
  const main = document.getElementById("main");
  if (!who) return signInPage(main);
  const route = parse();
  const entry = PAGES[route.name];
  nav(route.name === "message" ? "messages" : route.name);
  if (!entry || (entry.admin && !who.admin)) {
    replace(main, h("h1", {}, "Not here"), h("p", {}, "This page does not exist for this key."));
    return;
  }
  document.title = entry.title + " · smsgw console";
  try {
    cleanup = (await entry.page(main, route, who)) || null;
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401) return signOut("The key is no longer accepted.");
    replace(main, h("h1", {}, entry.title), failure(e));
  }
  const heading = main.querySelector("h1");
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

function signInPage(main, message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").textContent = "";
  document.getElementById("signout").hidden = true;
  document.title = "Sign in · smsgw console";
  const key = h("input", { type: "password", name: "key", autocomplete: "current-password", required: true });
  const out = h("div", {}, message ? h("p", { class: "error", role: "alert" }, message) : "");
  const form = h("form", { class: "signin", onsubmit: async (ev) => {
    ev.preventDefault();
    replace(out);
    try {
      who = await signIn(key.value.trim());
      if (!location.hash || location.hash === "#/signin") location.hash = "#/messages";
      else show();
    } catch (e) {
      replace(out, failure(e.status === 401 ? new ApiFailure(401, "unauthorized", "This key is not accepted.") : e));
      key.focus();
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, "An admin key shows every account; a customer's API key shows that account only."),
  field("API key", key), h("button", { type: "submit" }, "Sign in"), out);
  replace(main, form);
  key.focus();
}

function signOut(message) {
  forget();
  who = null;
  if (cleanup) { cleanup(); cleanup = null; }
  signInPage(document.getElementById("main"), message);
}

async function start() {
  document.getElementById("signout").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", show);
  const key = savedKey();
  if (key) {
    try {
      who = await signIn(key);
    } catch (e) {
      forget();
    }
  }
  show();
}

start();
