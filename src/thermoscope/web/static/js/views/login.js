/**
 * The sign-in page.
 * @module views/login
 */

import * as api from "../api.js";
import { fill, h } from "../dom.js";

/**
 * Draw the sign-in form; `onLogin` receives `{user, csrf_token}`.
 * @param {HTMLElement} root
 * @param {(me: {user: any, csrf_token: string}) => void} onLogin
 */
export function renderLogin(root, onLogin) {
  root.classList.add("centered");
  const error = h("p", { class: "form-error", role: "alert" });
  const username = h("input", {
    name: "username",
    autocomplete: "username",
    required: true,
    autofocus: true,
  });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const button = h("button", { type: "submit", class: "primary wide" }, "Sign in");
  const form = h(
    "form",
    { class: "card login", onsubmit: submit },
    h("img", { src: "favicon.svg", alt: "", width: 48, height: 48, class: "login-logo" }),
    h("h1", {}, "thermoscope"),
    h("p", { class: "muted" }, "Thermal quality control and annotation"),
    h("label", {}, "User name", username),
    h("label", {}, "Password", password),
    error,
    button,
  );
  fill(root, form);
  username.focus();

  /** @param {SubmitEvent} event */
  async function submit(event) {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      onLogin(
        await api.post("/auth/login", {
          username: username.value.trim(),
          password: password.value,
        }),
      );
    } catch (err) {
      error.textContent = err.status === 401 ? "Wrong user name or password." : err.message;
      password.select();
    } finally {
      button.disabled = false;
    }
  }
}
