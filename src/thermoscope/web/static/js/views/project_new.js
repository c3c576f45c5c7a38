/**
 * A new project (site administrators): its name and first labels; its creator becomes its
 * admin and lands on its settings.
 * @module views/project_new
 */

import * as api from "../api.js";
import { fill, h } from "../dom.js";

/** @type {import("../main.js").View} */
export async function renderNewProject(root, params, ctx) {
  ctx.setCrumbs([["Projects", "#/"], ["New project"]]);
  if (!ctx.user.is_admin) {
    fill(root, h("div", { class: "empty" }, "Only site administrators create projects."));
    return;
  }
  const name = /** @type {HTMLInputElement} */ (h("input", { name: "name", required: true }));
  const labels = /** @type {HTMLInputElement} */ (
    h("input", { name: "labels", placeholder: "hot_spot, cold_joint (optional)" })
  );
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "New project")),
    h(
      "form",
      {
        class: "panel new-project",
        onsubmit: async (/** @type {SubmitEvent} */ e) => {
          e.preventDefault();
          const names = labels.value
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean);
          try {
            const project = await api.post("/projects", {
              name: name.value,
              label_schema: { labels: names.map((n) => ({ name: n })) },
            });
            location.hash = `#/p/${project.id}/settings`;
          } catch (err) {
            error.hidden = false;
            error.textContent = `Not created: ${err.message}`;
          }
        },
      },
      h("label", {}, "Name", name),
      h("label", {}, "Labels", labels),
      error,
      h(
        "div",
        { class: "form-actions" },
        h("button", { type: "submit", class: "primary" }, "Create"),
      ),
    ),
  );
}
