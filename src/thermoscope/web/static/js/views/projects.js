/**
 * The project list.
 * @module views/projects
 */

import * as api from "../api.js";
import { fill, h } from "../dom.js";
import { pager } from "./common.js";

const LIMIT = 24;

/** @type {import("../main.js").View} */
export async function renderProjects(root, params, ctx) {
  ctx.setCrumbs([["Projects"]]);
  const offset = Number(params.offset || 0);
  const page = await api.get(`/projects${api.query({ offset, limit: LIMIT })}`);
  const cards = page.items.map((p) =>
    h(
      "article",
      { class: "card project", dataset: { projectId: p.id } },
      h("h2", {}, h("a", { href: `#/p/${p.id}` }, p.name)),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Frames"),
        h("dd", {}, String(p.frame_count)),
        h("dt", {}, "Labels"),
        h("dd", {}, String(p.label_schema?.labels?.length ?? 0)),
        h("dt", {}, "Recipe"),
        h("dd", {}, p.recipe ? `${p.recipe.name} ${p.recipe.version ?? ""}` : "—"),
        h("dt", {}, "Your role"),
        h("dd", {}, p.role),
      ),
      h(
        "div",
        { class: "card-actions" },
        h("a", { class: "button primary", href: `#/p/${p.id}` }, "Frames"),
        h("a", { class: "button", href: `#/p/${p.id}/review` }, "Review"),
        h("a", { class: "button", href: `#/p/${p.id}/datasets` }, "Datasets"),
      ),
    ),
  );
  fill(
    root,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Projects"),
      ctx.user.is_admin &&
        h("a", { class: "button primary", href: "#/new-project" }, "New project"),
    ),
    cards.length
      ? h("div", { class: "grid" }, cards)
      : h("div", { class: "empty" }, "You are not a member of any project yet."),
    page.total > LIMIT && pager(page, (o) => `#/?offset=${o}`),
  );
}
