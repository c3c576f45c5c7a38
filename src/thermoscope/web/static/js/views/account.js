/**
 * The signed-in user's account: API tokens (made with scopes, their text shown once, listed,
 * revoked) and, for site administrators, the users of the server.
 * @module views/account
 */

import * as api from "../api.js";
import { fill, h, timeText, toast } from "../dom.js";

/** Token scopes, as the server's actions (`thermoscope.server.auth.SCOPES`). */
const SCOPES = [
  ["read", "read projects, frames and annotations"],
  ["ingest", "upload files"],
  ["annotate", "save annotations"],
  ["review", "accept and reject"],
  ["admin", "manage projects"],
];
const DAY_S = 24 * 3600;

/** @type {import("../main.js").View} */
export async function renderAccount(root, params, ctx) {
  ctx.setCrumbs([["Projects", "#/"], ["Account"]]);
  const tokensHost = h("section", { class: "panel tokens-panel" });
  const usersHost = h("section", { class: "panel users-panel" });
  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, ctx.user.username)),
    tokensHost,
    ctx.user.is_admin ? usersHost : null,
  );

  /** @param {any} [created] a token just made (its text is shown this once) */
  async function drawTokens(created) {
    const page = await api.get("/tokens?limit=500");
    const name = /** @type {HTMLInputElement} */ (
      h("input", { name: "token_name", required: true, placeholder: "e.g. line-3 edge agent" })
    );
    const days = /** @type {HTMLInputElement} */ (
      h("input", { type: "number", name: "days", min: "1", max: "365", value: "30" })
    );
    const boxes = SCOPES.map(([scope, what]) => {
      const box = /** @type {HTMLInputElement} */ (
        h("input", { type: "checkbox", name: "scope", value: scope, checked: scope === "read" })
      );
      return [scope, box, h("label", { class: "inline", title: what }, box, scope)];
    });
    fill(
      tokensHost,
      h("h2", {}, "API tokens"),
      created
        ? h(
            "div",
            { class: "token-once", role: "status" },
            h("p", {}, `Token “${created.name}”: copy it now, it is not shown again.`),
            h("code", { class: "token-text" }, created.token),
            h("p", { class: "muted small" }, "Send it as: Authorization: Bearer <token>"),
          )
        : null,
      page.items.length
        ? h(
            "table",
            { class: "table tokens" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Name", "Scopes", "Created", "Expires", ""].map((c) => h("th", {}, c)),
              ),
            ),
            h(
              "tbody",
              {},
              page.items.map((/** @type {any} */ t) =>
                h(
                  "tr",
                  { dataset: { tokenId: String(t.id), tokenName: t.name } },
                  h("td", {}, t.name),
                  h("td", {}, t.scopes.join(", ")),
                  h("td", { class: "muted" }, timeText(t.created_at)),
                  h("td", { class: "muted" }, timeText(t.expires_at)),
                  h(
                    "td",
                    {},
                    h(
                      "button",
                      {
                        type: "button",
                        class: "ghost small",
                        onclick: async () => {
                          try {
                            await api.request("DELETE", `/tokens/${t.id}`);
                            toast(`Token “${t.name}” revoked.`);
                          } catch (error) {
                            toast(`Not revoked: ${error.message}`, "error");
                          }
                          drawTokens();
                        },
                      },
                      "Revoke",
                    ),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No API tokens."),
      h(
        "form",
        {
          class: "inline-form new-token",
          onsubmit: async (/** @type {SubmitEvent} */ e) => {
            e.preventDefault();
            const scopes = boxes.filter(([, box]) => box.checked).map(([scope]) => scope);
            try {
              const token = await api.post("/tokens", {
                name: name.value,
                scopes,
                expires_in_s: Math.round(Number(days.value) * DAY_S),
              });
              drawTokens(token);
            } catch (error) {
              toast(`Token not made: ${error.message}`, "error");
            }
          },
        },
        h("label", {}, "Name", name),
        h("fieldset", { class: "scopes" }, h("legend", {}, "Scopes"), boxes.map(([, , l]) => l)),
        h("label", {}, "Valid for (days)", days),
        h("button", { type: "submit", class: "primary" }, "Make token"),
      ),
    );
  }

  async function drawUsers() {
    const page = await api.get("/users?limit=500");
    const username = /** @type {HTMLInputElement} */ (
      h("input", { name: "new_username", required: true, autocomplete: "off" })
    );
    const password = /** @type {HTMLInputElement} */ (
      h("input", {
        type: "password",
        name: "new_password",
        required: true,
        minlength: "8",
        autocomplete: "new-password",
      })
    );
    const admin = /** @type {HTMLInputElement} */ (
      h("input", { type: "checkbox", name: "new_is_admin" })
    );
    fill(
      usersHost,
      h("h2", {}, "Users"),
      h(
        "ul",
        { class: "user-list" },
        page.items.map((/** @type {any} */ u) =>
          h(
            "li",
            { dataset: { username: u.username } },
            u.username,
            u.is_admin ? h("span", { class: "badge" }, "site admin") : "",
          ),
        ),
      ),
      h(
        "form",
        {
          class: "inline-form new-user",
          onsubmit: async (/** @type {SubmitEvent} */ e) => {
            e.preventDefault();
            try {
              await api.post("/users", {
                username: username.value.trim(),
                password: password.value,
                is_admin: admin.checked,
              });
              toast(`User ${username.value.trim()} added; give them a role in a project.`);
              drawUsers();
            } catch (error) {
              toast(`User not added: ${error.message}`, "error");
            }
          },
        },
        h("label", {}, "User name", username),
        h("label", {}, "Password (8 characters or more)", password),
        h("label", { class: "inline" }, admin, "site administrator"),
        h("button", { type: "submit", class: "primary" }, "Add user"),
      ),
    );
  }

  await Promise.all([drawTokens(), ctx.user.is_admin ? drawUsers() : null]);
}
