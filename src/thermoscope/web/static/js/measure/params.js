/**
 * The frame's camera and measurement parameters, and the form that recomputes the °C with
 * another emissivity or reflected temperature for the whole frame or one region.
 * @module measure/params
 */

import { fill, h } from "../dom.js";

/** Parameters shown, in order: field of `ObjectParameters`, label, unit, decimals. */
const SHOWN = [
  ["emissivity", "Emissivity", "", 2],
  ["reflected_temp_c", "Reflected temperature", "°C", 1],
  ["object_distance_m", "Distance", "m", 2],
  ["relative_humidity_pct", "Relative humidity", "%", 0],
  ["atmospheric_temp_c", "Atmospheric temperature", "°C", 1],
  ["ir_window_temp_c", "IR window temperature", "°C", 1],
  ["ir_window_transmission", "IR window transmission", "", 2],
];

/**
 * A region the parameters can be changed for.
 * @typedef {object} RegionChoice
 * @property {string} id
 * @property {string} name shown to the user
 * @property {any} shape an annotation shape dict
 */

/**
 * The change asked for.
 * @typedef {object} Change
 * @property {number | null} emissivity
 * @property {number | null} reflected_temp_c
 * @property {RegionChoice | null} region null: the whole frame
 */

/**
 * A definition list of facts, skipping empty values.
 * @param {string} cls
 * @param {Array<[string, string]>} rows
 * @returns {HTMLElement}
 */
function facts(cls, rows) {
  return h(
    "dl",
    { class: `facts ${cls}` },
    rows
      .filter(([, v]) => v !== "")
      .map(([k, v]) => [h("dt", {}, k), h("dd", { dataset: { fact: k } }, v)]),
  );
}

/**
 * Draw the panel.
 * @param {HTMLElement} host
 * @param {any} info the frame's detail (camera, parameters)
 * @param {RegionChoice[]} regions
 * @param {(change: Change) => Promise<void>} apply
 * @param {() => void} reset
 */
export function renderParameters(host, info, regions, apply, reset) {
  const camera = info.camera ?? {};
  const params = info.parameters;
  const cameraFacts = facts("camera-facts", [
    ["Camera", [camera.make, camera.model].filter(Boolean).join(" ") || "unknown"],
    ["Serial", camera.serial ?? ""],
    ["Lens", camera.lens ?? ""],
    ["Format", info.format],
  ]);
  if (!params) {
    fill(
      host,
      h("h3", {}, "Camera and measurement"),
      cameraFacts,
      h(
        "p",
        { class: "muted small params-none" },
        "This file carries no measurement parameters: its temperatures cannot be recomputed.",
      ),
    );
    return;
  }
  const paramFacts = facts(
    "parameter-facts",
    SHOWN.filter(([name]) => name in params).map(([name, label, unit, decimals]) => [
      String(label),
      `${Number(params[name]).toFixed(Number(decimals))}${unit ? ` ${unit}` : ""}`,
    ]),
  );
  const emissivity = /** @type {HTMLInputElement} */ (
    h("input", {
      type: "number",
      name: "emissivity",
      min: "0.01",
      max: "1",
      step: "any",
      value: String(params.emissivity),
      required: true,
    })
  );
  const reflected = /** @type {HTMLInputElement} */ (
    h("input", {
      type: "number",
      name: "reflected_temp_c",
      min: "-273",
      max: "10000",
      step: "any",
      value: String(params.reflected_temp_c),
      required: true,
    })
  );
  const scope = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { name: "scope" },
      h("option", { value: "" }, "Whole frame"),
      regions.map((r) => h("option", { value: r.id }, r.name)),
    )
  );
  const message = h("p", { class: "params-state muted small", role: "status" }, "As stored");
  const form = h(
    "form",
    {
      class: "params-form",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const region = regions.find((r) => r.id === scope.value) ?? null;
        message.textContent = "Recomputing…";
        try {
          await apply({
            emissivity: Number(emissivity.value),
            reflected_temp_c: Number(reflected.value),
            region,
          });
          message.textContent = `Recomputed: ε ${Number(emissivity.value)}, reflected ${Number(
            reflected.value,
          )} °C for ${region ? region.name : "the whole frame"} (a view: nothing is stored)`;
          message.className = "params-state small changed";
        } catch (error) {
          message.textContent = `Not recomputed: ${error.message}`;
          message.className = "params-state small error";
        }
      },
    },
    h("label", {}, "Emissivity", emissivity),
    h("label", {}, "Reflected temperature (°C)", reflected),
    h("label", {}, "Apply to", scope),
    h(
      "div",
      { class: "form-actions" },
      h("button", { type: "submit", class: "primary" }, "Recompute"),
      h(
        "button",
        {
          type: "button",
          class: "ghost",
          onclick: () => {
            reset();
            emissivity.value = String(params.emissivity);
            reflected.value = String(params.reflected_temp_c);
            scope.value = "";
            message.textContent = "As stored";
            message.className = "params-state muted small";
          },
        },
        "As stored",
      ),
    ),
  );
  fill(host, h("h3", {}, "Camera and measurement"), cameraFacts, paramFacts, form, message);
}
