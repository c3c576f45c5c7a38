/**
 * The application shell: session, top bar and hash routes.
 *
 * Routes: `#/login`, `#/` (projects), `#/p/{pid}` (frames), `#/p/{pid}/review`,
 * `#/p/{pid}/datasets`, `#/p/{pid}/line` (stations), `#/f/{fid}` (annotate),
 * `#/p/{pid}/upload`, `#/p/{pid}/settings` (labels,
 * members), `#/new-project`, `#/account` (API tokens, users), `#/f/{fid}/measure`.
 * @module main
 */

import * as api from "./api.js";
import { fill, h, toast } from "./dom.js";
import { renderLogin } from "./views/login.js";
import { renderProjects } from "./views/projects.js";
import { renderFrames } from "./views/frames.js";
import { renderReview } from "./views/review.js";
import { renderDatasets } from "./views/datasets.js";
import { renderAnnotate } from "./views/annotate.js";
import { renderAccount } from "./views/account.js";
import { renderMeasure } from "./views/measure.js";
import { renderNewProject } from "./views/project_new.js";
import { renderSettings } from "./views/settings.js";
import { renderUpload } from "./views/upload.js";
import { renderLine } from "./views/line.js";

/**
 * What every view receives.
 * @typedef {object} Context
 * @property {{id: number, username: string, is_admin: boolean}} user
 * @property {(crumbs: Array<[string, string?]>) => void} setCrumbs label and link of each level
 * @property {HTMLElement} extra the top bar's slot for view controls
 * @property {() => void} reload draw the current route again
 */

/**
 * A view: draws into `root` and may return a cleanup run when the route changes.
 * @typedef {(root: HTMLElement, params: Record<string, string>, ctx: Context) =>
 *   Promise<(() => void) | void>} View
 */

/** @type {Array<[RegExp, string[], View]>} */
const ROUTES = [
  [/^\/$/, [], renderProjects],
  [/^\/p\/(\d+)$/, ["pid"], renderFrames],
  [/^\/p\/(\d+)\/review$/, ["pid"], renderReview],
  [/^\/p\/(\d+)\/datasets$/, ["pid"], renderDatasets],
  [/^\/p\/(\d+)\/line$/, ["pid"], renderLine],
  [/^\/f\/([0-9a-zA-Z_-]+)$/, ["fid"], renderAnnotate],
  [/^\/p\/(\d+)\/upload$/, ["pid"], renderUpload],
  [/^\/p\/(\d+)\/settings$/, ["pid"], renderSettings],
  [/^\/new-project$/, [], renderNewProject],
  [/^\/account$/, [], renderAccount],
  [/^\/f\/([0-9a-zA-Z_-]+)\/measure$/, ["fid"], renderMeasure],
];

const root = /** @type {HTMLElement} */ (document.getElementById("view"));
const crumbs = /** @type {HTMLElement} */ (document.getElementById("crumbs"));
const extra = /** @type {HTMLElement} */ (document.getElementById("topbar-extra"));
const account = /** @type {HTMLElement} */ (document.getElementById("account"));

/** @type {Context["user"] | null} */
let user = null;
/** @type {(() => void) | void} */
let cleanup;
let routeCount = 0;

/** @param {Array<[string, string?]>} items */
function setCrumbs(items) {
  fill(
    crumbs,
    items.map(([label, link], i) => [
      i > 0 && h("span", { class: "sep", "aria-hidden": "true" }, "/"),
      link ? h("a", { href: link }, label) : h("span", { class: "current" }, label),
    ]),
  );
}

function drawAccount() {
  if (!user) {
    fill(account);
    return;
  }
  fill(
    account,
    h(
      "a",
      {
        class: "user",
        href: "#/account",
        title: user.is_admin
          ? "site administrator: account, API tokens, users"
          : "account, API tokens",
      },
      user.username,
    ),
    h("button", { type: "button", class: "ghost", onclick: logout }, "Log out"),
  );
}

async function logout() {
  await api.post("/auth/logout").catch(() => null);
  user = null;
  api.setCsrfToken(null);
  location.hash = "#/login";
}

/**
 * The route path and its query of the location hash.
 * @returns {{path: string, query: URLSearchParams}}
 */
function currentRoute() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

async function route() {
  const token = ++routeCount;
  if (typeof cleanup === "function") cleanup();
  cleanup = undefined;
  fill(extra);
  const { path, query } = currentRoute();
  if (!user && path !== "/login") {
    try {
      const me = await api.get("/auth/me");
      user = me.user;
      api.setCsrfToken(me.csrf_token);
    } catch {
      location.replace(`#/login?next=${encodeURIComponent(location.hash.slice(1) || "/")}`);
      return;
    }
  }
  drawAccount();
  root.className = "view";
  if (path === "/login") {
    setCrumbs([["Sign in"]]);
    renderLogin(root, (me) => {
      user = me.user;
      api.setCsrfToken(me.csrf_token);
      location.hash = `#${query.get("next") || "/"}`;
    });
    return;
  }
  for (const [pattern, names, view] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const params = Object.fromEntries([
      ...query.entries(),
      ...names.map((name, i) => [name, decodeURIComponent(match[i + 1])]),
    ]);
    try {
      const result = await view(root, params, {
        user: /** @type {Context["user"]} */ (user),
        setCrumbs,
        extra,
        reload: route,
      });
      if (token === routeCount) cleanup = result;
      else if (typeof result === "function") result();
    } catch (error) {
      if (token !== routeCount) return;
      fill(root, h("div", { class: "empty error" }, `Could not open this page: ${error.message}`));
    }
    return;
  }
  setCrumbs([["Not found"]]);
  fill(root, h("div", { class: "empty" }, "No such page. ", h("a", { href: "#/" }, "Projects")));
}

api.setUnauthorizedHandler(() => {
  if (!user) return;
  user = null;
  toast("Your session ended; please sign in again.", "error");
  location.hash = `#/login?next=${encodeURIComponent(location.hash.slice(1))}`;
});
window.addEventListener("hashchange", route);
route();
