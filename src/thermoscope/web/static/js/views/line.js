/**
 * The line view of a project (its digital twin): every station the edge agents reported, its
 * status (ok, drift, ng), the values drifting (the run-long watch's open alarms) and the last
 * NG parts, from `GET /projects/{pid}/twin`.
 * @module views/line
 */

import * as api from "../api.js";
import { fill, h, timeText } from "../dom.js";
import { loadProject, projectTabs } from "./common.js";

const STATUS_TEXT = { ok: "OK", drift: "Drifting", ng: "NG parts" };

/**
 * One station's card.
 * @param {any} station a StationOut
 * @returns {HTMLElement}
 */
function stationCard(station) {
  return h(
    "article",
    { class: `station status-${station.status}`, "data-station": station.station },
    h(
      "header",
      {},
      h("h2", {}, station.station),
      h(
        "span",
        { class: "badge", "data-status": station.status },
        STATUS_TEXT[station.status] ?? station.status,
      ),
    ),
    h(
      "p",
      { class: "muted" },
      `${station.site} / ${station.line}`,
      station.recipe ? ` · recipe ${station.recipe}` : "",
      ` · last part ${timeText(station.last_seen)}`,
    ),
    h(
      "p",
      { class: "counts" },
      h("span", { "data-field": "parts" }, String(station.parts)),
      " parts, ",
      h("span", { "data-field": "ng" }, String(station.ng)),
      " NG",
    ),
    station.drift.length
      ? h(
          "ul",
          { class: "drift" },
          station.drift.map((d) =>
            h("li", { "data-rule": d.rule, title: d.explanation }, d.explanation),
          ),
        )
      : h("p", { class: "muted drift-none" }, "No drift"),
    station.recent_ng.length
      ? h(
          "ul",
          { class: "recent-ng" },
          station.recent_ng.map((n) =>
            h(
              "li",
              {},
              h("a", { href: `#/f/${n.frame_id}` }, n.part ? `part ${n.part}` : n.frame_id),
              ` ${timeText(n.time)}`,
            ),
          ),
        )
      : null,
  );
}

/** @type {import("../main.js").View} */
export async function renderLine(root, params, ctx) {
  const pid = Number(params.pid);
  const [project, twin] = await Promise.all([loadProject(pid), api.get(`/projects/${pid}/twin`)]);
  ctx.setCrumbs([["Projects", "#/"], [project.name, `#/p/${pid}`], ["Line"]]);
  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, project.name), projectTabs(project, "line")),
    twin.stations.length
      ? h("section", { class: "line-view", "data-loaded": "true" }, twin.stations.map(stationCard))
      : h(
          "p",
          { class: "muted line-view", "data-loaded": "true" },
          "No station has sent parts yet: the edge agent's frames carry their station in meta.",
        ),
  );
}
