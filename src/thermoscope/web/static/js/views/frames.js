/**
 * A project's frames: paginated, filtered by status and verdict.
 * @module views/frames
 */

import * as api from "../api.js";
import { fill, h, timeText } from "../dom.js";
import {
  loadProject,
  pager,
  projectTabs,
  rememberOrder,
  statusBadge,
  verdictBadge,
} from "./common.js";

const LIMIT = 50;
const STATUSES = ["", "new", "in_progress", "submitted", "accepted", "rejected"];
const VERDICTS = ["", "OK", "NG", "none"];

/**
 * The hash of the frame list with these filters.
 * @param {string} pid
 * @param {Record<string, string | number>} params
 * @returns {string}
 */
function listHash(pid, params) {
  return `#/p/${pid}${api.query(params)}`;
}

/** @type {import("../main.js").View} */
export async function renderFrames(root, params, ctx) {
  const { pid } = params;
  const filters = { status: params.status ?? "", verdict: params.verdict ?? "" };
  const offset = Number(params.offset || 0);
  const [project, page] = await Promise.all([
    loadProject(pid),
    api.get(`/projects/${pid}/frames${api.query({ ...filters, offset, limit: LIMIT })}`),
  ]);
  ctx.setCrumbs([["Projects", "#/"], [project.name]]);
  rememberOrder(page.items.map((f) => f.id));

  const select = (name, values, label) =>
    h(
      "label",
      { class: "inline" },
      label,
      h(
        "select",
        {
          name,
          value: filters[name],
          onchange: (event) => {
            location.hash = listHash(pid, { ...filters, [name]: event.target.value });
          },
        },
        values.map((v) => h("option", { value: v }, v ? v.replace("_", " ") : "any")),
      ),
    );

  const rows = page.items.map((f) =>
    h(
      "tr",
      {
        class: "clickable",
        dataset: { frameId: f.id },
        onclick: () => (location.hash = `#/f/${f.id}`),
      },
      h("td", {}, h("a", { href: `#/f/${f.id}` }, f.filename || f.id.slice(0, 12))),
      h("td", { class: "num" }, `${f.width}×${f.height}`),
      h("td", { class: "num" }, String(f.frame_count)),
      h("td", {}, statusBadge(f.status)),
      h("td", {}, verdictBadge(f.verdict)),
      h("td", {}, verdictBadge(f.machine_verdict)),
      h("td", { class: "num" }, f.confidence === null ? "—" : f.confidence.toFixed(2)),
      h("td", {}, f.disagreement ? h("span", { class: "badge warn" }, "disagree") : ""),
      h("td", { class: "muted" }, timeText(f.created_at)),
    ),
  );
  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, project.name), projectTabs(project, "frames")),
    h(
      "div",
      { class: "toolbar" },
      select("status", STATUSES, "Status"),
      select("verdict", VERDICTS, "Verdict"),
    ),
    rows.length
      ? h(
          "table",
          { class: "table frames" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              [
                "File",
                "Size",
                "Frames",
                "Status",
                "Verdict",
                "Machine",
                "Confidence",
                "",
                "Added",
              ].map((c, i) => h("th", { class: [1, 2, 6].includes(i) ? "num" : null }, c)),
            ),
          ),
          h("tbody", {}, rows),
        )
      : h("div", { class: "empty" }, "No frames match these filters."),
    pager(page, (o) => listHash(pid, { ...filters, offset: o })),
  );
}
