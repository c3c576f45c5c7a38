/**
 * Small DOM helpers: element building, formatting, toasts and a text prompt dialog.
 * @module dom
 */

/**
 * Build an element: `h("button", {class: "primary", onclick: fn}, "Save")`.
 * Attributes starting with `on` become listeners, `dataset` an object of data attributes,
 * `style` CSS text set through CSSOM (a Content-Security-Policy blocks style attributes),
 * `value` and non-string values of known properties are set as properties, `false`/`null`/
 * `undefined` are left out; children may be strings, nodes or arrays.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  append(el, children); // before the attributes, so that a select's value finds its option
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") el.style.cssText = value; // CSSOM: allowed by a strict CSP
    else if (key === "value" || (key in el && typeof value !== "string")) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  return el;
}

/**
 * Append children (strings, nodes, nested arrays; null and false skipped).
 * @param {Node} parent
 * @param {any[]} children
 */
function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Replace an element's content.
 * @param {Element} el
 * @param {...any} children
 */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * A temperature as text: two decimals and the unit, or a dash.
 * @param {number | null | undefined} value °C
 * @returns {string}
 */
export function celsiusText(value) {
  return value === null || value === undefined || !Number.isFinite(value)
    ? "—"
    : `${value.toFixed(2)} °C`;
}

/**
 * A date-time as short local text.
 * @param {string | null | undefined} iso
 * @returns {string}
 */
export function timeText(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
}

/**
 * Show a short message at the bottom of the window.
 * @param {string} message
 * @param {"info" | "error"} [kind]
 */
export function toast(message, kind = "info") {
  const host = document.getElementById("toasts");
  if (!host) return;
  const el = h(
    "div",
    { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    message,
  );
  host.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 6000 : 3000);
}

/**
 * Ask for a line of text in a modal dialog.
 * @param {object} options
 * @param {string} options.title
 * @param {string} [options.label]
 * @param {string} [options.value] initial text
 * @param {string} [options.confirm] button text
 * @param {boolean} [options.required] refuse empty text
 * @returns {Promise<string | null>} the text, or null when cancelled
 */
export function promptText({ title, label = "", value = "", confirm = "OK", required = false }) {
  return new Promise((resolve) => {
    const input = h("textarea", { class: "prompt-input", rows: 3, "aria-label": label || title });
    input.value = value;
    const error = h("div", { class: "prompt-error" });
    const dialog = h("dialog", { class: "prompt" });
    const done = (result) => {
      dialog.close();
      dialog.remove();
      resolve(result);
    };
    const submit = () => {
      const text = input.value.trim();
      if (required && !text) {
        error.textContent = "Please write something.";
        input.focus();
        return;
      }
      done(text);
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        submit();
      }
      event.stopPropagation();
    });
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      done(null);
    });
    fill(
      dialog,
      h("h2", {}, title),
      label && h("label", { class: "prompt-label" }, label),
      input,
      error,
      h(
        "div",
        { class: "prompt-actions" },
        h("button", { type: "button", onclick: () => done(null) }, "Cancel"),
        h("button", { type: "button", class: "primary", onclick: submit }, confirm),
      ),
    );
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
    input.select();
  });
}
