/**
 * A project's settings for those who manage it (its admins and site administrators): the
 * labels of its schema and its members with their roles. Others are told they cannot.
 * @module views/settings
 */

import * as api from "../api.js";
import { fill, h, toast } from "../dom.js";
import { loadProject, projectTabs } from "./common.js";

const ROLES = ["viewer", "annotator", "reviewer", "admin"];

/**
 * A select of the roles.
 * @param {string} value
 * @param {Record<string, any>} [attrs]
 * @returns {HTMLSelectElement}
 */
function roleSelect(value, attrs = {}) {
  return /** @type {HTMLSelectElement} */ (
    h("select", { name: "role", value, ...attrs }, ROLES.map((r) => h("option", { value: r }, r)))
  );
}

/**
 * Run a write and toast its error (true when it worked).
 * @param {() => Promise<any>} write
 * @param {string} what
 * @returns {Promise<boolean>}
 */
async function attempt(write, what) {
  try {
    await write();
    return true;
  } catch (error) {
    toast(`${what}: ${error.message}`, "error");
    return false;
  }
}

/** @type {import("../main.js").View} */
export async function renderSettings(root, params, ctx) {
  const pid = params.pid;
  let project = await loadProject(pid);
  ctx.setCrumbs([["Projects", "#/"], [project.name, `#/p/${project.id}`], ["Settings"]]);
  const head = h(
    "div",
    { class: "page-head" },
    h("h1", {}, project.name),
    projectTabs(project, "settings"),
  );
  if (project.role !== "admin") {
    fill(root, head, h("div", { class: "empty" }, "Only the project's admins manage it."));
    return;
  }
  const labelsHost = h("section", { class: "panel labels-panel" });
  const membersHost = h("section", { class: "panel members-panel" });
  fill(root, head, h("div", { class: "settings" }, labelsHost, membersHost));

  /** @param {any[]} labels the whole new label list */
  async function saveLabels(labels) {
    if (
      await attempt(async () => {
        project = await api.put(`/projects/${pid}/label-schema`, {
          ...project.label_schema,
          labels,
        });
      }, "Labels not saved")
    )
      drawLabels();
  }

  function drawLabels() {
    const labels = project.label_schema?.labels ?? [];
    const name = /** @type {HTMLInputElement} */ (
      h("input", { name: "label", required: true, placeholder: "e.g. hot_spot" })
    );
    const description = /** @type {HTMLInputElement} */ (
      h("input", { name: "description", placeholder: "what it marks (optional)" })
    );
    fill(
      labelsHost,
      h("h2", {}, "Labels"),
      labels.length
        ? h(
            "ul",
            { class: "label-list" },
            labels.map((/** @type {any} */ l) =>
              h(
                "li",
                { dataset: { label: l.name } },
                h("strong", {}, l.name),
                l.description ? h("span", { class: "muted" }, ` ${l.description}`) : "",
                h(
                  "button",
                  {
                    type: "button",
                    class: "ghost small",
                    title: `Remove ${l.name}`,
                    onclick: () => saveLabels(labels.filter((x) => x.name !== l.name)),
                  },
                  "Remove",
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No labels yet."),
      h(
        "form",
        {
          class: "inline-form add-label",
          onsubmit: (/** @type {SubmitEvent} */ e) => {
            e.preventDefault();
            const label = { name: name.value.trim() };
            if (description.value.trim()) label.description = description.value.trim();
            saveLabels([...labels, label]);
          },
        },
        h("label", {}, "Name", name),
        h("label", {}, "Description", description),
        h("button", { type: "submit", class: "primary" }, "Add label"),
      ),
    );
  }

  async function drawMembers() {
    const members = (await api.get(`/projects/${pid}/members`)).items;
    const username = /** @type {HTMLInputElement} */ (
      h("input", { name: "username", required: true, autocomplete: "off" })
    );
    const role = roleSelect("annotator");
    fill(
      membersHost,
      h("h2", {}, "Members"),
      h(
        "table",
        { class: "table members" },
        h("thead", {}, h("tr", {}, h("th", {}, "User"), h("th", {}, "Role"), h("th", {}, ""))),
        h(
          "tbody",
          {},
          members.map((/** @type {any} */ m) =>
            h(
              "tr",
              { dataset: { member: m.username } },
              h("td", {}, m.username),
              h(
                "td",
                {},
                roleSelect(m.role, {
                  onchange: async (/** @type {Event} */ e) => {
                    const value = /** @type {HTMLSelectElement} */ (e.target).value;
                    await attempt(
                      () => api.put(`/projects/${pid}/members/${m.username}`, { role: value }),
                      "Role not changed",
                    );
                    drawMembers();
                  },
                }),
              ),
              h(
                "td",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: "ghost small",
                    onclick: async () => {
                      await attempt(
                        () => api.request("DELETE", `/projects/${pid}/members/${m.username}`),
                        "Not removed",
                      );
                      drawMembers();
                    },
                  },
                  "Remove",
                ),
              ),
            ),
          ),
        ),
      ),
      h(
        "form",
        {
          class: "inline-form add-member",
          onsubmit: async (/** @type {SubmitEvent} */ e) => {
            e.preventDefault();
            const ok = await attempt(
              () =>
                api.put(`/projects/${pid}/members/${encodeURIComponent(username.value.trim())}`, {
                  role: role.value,
                }),
              "Member not added",
            );
            if (ok) drawMembers();
          },
        },
        h("label", {}, "User name", username),
        h("label", {}, "Role", role),
        h("button", { type: "submit", class: "primary" }, "Add member"),
      ),
      ctx.user.is_admin
        ? h(
            "p",
            { class: "muted small" },
            "New users are made on ",
            h("a", { href: "#/account" }, "your account page"),
            ".",
          )
        : null,
    );
  }

  drawLabels();
  await drawMembers();
}
