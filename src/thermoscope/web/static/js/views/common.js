/**
 * Pieces shared by the list views: status and verdict badges, a pager, project tabs, and the
 * frame order remembered for next / previous in the annotate view.
 * @module views/common
 */

import * as api from "../api.js";
import { h } from "../dom.js";

/**
 * A coloured badge for a frame status or review state.
 * @param {string} status
 * @returns {HTMLElement}
 */
export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status.replace("_", " "));
}

/**
 * A coloured badge for an OK / NG verdict (a dash when none).
 * @param {string | null | undefined} verdict
 * @returns {HTMLElement}
 */
export function verdictBadge(verdict) {
  return verdict
    ? h("span", { class: `badge verdict-${verdict}` }, verdict)
    : h("span", { class: "muted" }, "—");
}

/**
 * Previous / next page links of a paginated answer.
 * @param {{total: number, offset: number, limit: number}} page
 * @param {(offset: number) => string} link the hash of the page at an offset
 * @returns {HTMLElement}
 */
export function pager(page, link) {
  const { total, offset, limit } = page;
  const last = Math.min(offset + limit, total);
  return h(
    "div",
    { class: "pager" },
    h("span", { class: "muted" }, total ? `${offset + 1}–${last} of ${total}` : "none"),
    h(
      "a",
      {
        class: `button ghost${offset > 0 ? "" : " disabled"}`,
        href: offset > 0 ? link(Math.max(0, offset - limit)) : null,
      },
      "‹ Previous",
    ),
    h(
      "a",
      {
        class: `button ghost${last < total ? "" : " disabled"}`,
        href: last < total ? link(offset + limit) : null,
      },
      "Next ›",
    ),
  );
}

/**
 * The project, read once per call.
 * @param {string | number} pid
 * @returns {Promise<any>}
 */
export function loadProject(pid) {
  return api.get(`/projects/${pid}`);
}

/**
 * Tabs between a project's frames, review queue and dataset versions.
 * @param {any} project
 * @param {"frames" | "review" | "datasets" | "upload" | "settings"} active
 * @returns {HTMLElement}
 */
export function projectTabs(project, active) {
  const tabs = [
    ["frames", `#/p/${project.id}`, "Frames"],
    ["review", `#/p/${project.id}/review`, "Review queue"],
    ["datasets", `#/p/${project.id}/datasets`, "Dataset versions"],
    ["line", `#/p/${project.id}/line`, "Line"],
    // only who may upload / manage sees these (the server checks again)
    project.role !== "viewer" && ["upload", `#/p/${project.id}/upload`, "Upload"],
    project.role === "admin" && ["settings", `#/p/${project.id}/settings`, "Settings"],
  ].filter(Boolean);
  return h(
    "nav",
    { class: "tabs" },
    tabs.map(([key, href, label]) =>
      h(
        "a",
        {
          href,
          class: key === active ? "active" : "",
          "aria-current": key === active ? "page" : null,
        },
        label,
      ),
    ),
  );
}

const ORDER_KEY = "thermoscope.frame-order";

/**
 * Remember the frames of the list the user opened a frame from (for next / previous).
 * @param {string[]} ids
 */
export function rememberOrder(ids) {
  sessionStorage.setItem(ORDER_KEY, JSON.stringify(ids));
}

/**
 * The frame before or after `fid` in the remembered list, or null.
 * @param {string} fid
 * @param {number} step -1 or +1
 * @returns {string | null}
 */
export function neighbour(fid, step) {
  /** @type {string[]} */
  const ids = JSON.parse(sessionStorage.getItem(ORDER_KEY) || "[]");
  const i = ids.indexOf(fid);
  return i < 0 ? null : (ids[i + step] ?? null);
}
