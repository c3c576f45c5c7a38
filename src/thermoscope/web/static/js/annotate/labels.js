/**
 * The project's label schema (`LabelSchema.to_dict()`, see `thermoscope.annotations.schema`):
 * labels and their typed attributes (enum, text, number, bool).
 * @module annotate/labels
 */

import { h } from "../dom.js";

/**
 * @typedef {object} AttributeSpec
 * @property {string} name
 * @property {"enum" | "text" | "number" | "bool"} type
 * @property {string[]} [values]
 * @property {number | null} [minimum]
 * @property {number | null} [maximum]
 * @property {boolean} [required]
 * @property {any} [default]
 * @property {string} [description]
 */

/**
 * The spec of a label, or undefined.
 * @param {any} schema
 * @param {string} label
 * @returns {{name: string, description?: string, attributes?: AttributeSpec[]} | undefined}
 */
export function labelSpec(schema, label) {
  return schema.labels.find((l) => l.name === label);
}

/**
 * Attributes for `label`: the current values its spec knows, then the defaults of the others.
 * @param {any} schema
 * @param {string} label
 * @param {Record<string, any>} [current]
 * @returns {Record<string, any>}
 */
export function attributesFor(schema, label, current = {}) {
  /** @type {Record<string, any>} */
  const out = {};
  for (const spec of labelSpec(schema, label)?.attributes ?? []) {
    if (spec.name in current) out[spec.name] = current[spec.name];
    else if (spec.default !== null && spec.default !== undefined) out[spec.name] = spec.default;
  }
  return out;
}

/**
 * An input for one attribute; `onChange` receives the new value (undefined clears it).
 * @param {AttributeSpec} spec
 * @param {any} value
 * @param {(value: any) => void} onChange
 * @returns {HTMLElement}
 */
export function attributeInput(spec, value, onChange) {
  const title = spec.description || spec.name;
  if (spec.type === "bool") {
    return h("input", {
      type: "checkbox",
      name: spec.name,
      title,
      checked: value === true,
      onchange: (e) => onChange(e.target.checked),
    });
  }
  if (spec.type === "enum") {
    return h(
      "select",
      {
        name: spec.name,
        title,
        value: value ?? "",
        onchange: (e) => onChange(e.target.value || undefined),
      },
      !spec.required && h("option", { value: "" }, "—"),
      (spec.values ?? []).map((v) => h("option", { value: v }, v)),
    );
  }
  if (spec.type === "number") {
    return h("input", {
      type: "number",
      name: spec.name,
      title,
      step: "any",
      min: spec.minimum ?? null,
      max: spec.maximum ?? null,
      value: value ?? "",
      onchange: (e) =>
        onChange(
          e.target.value === "" || !e.target.checkValidity() ? undefined : Number(e.target.value),
        ),
    });
  }
  return h("input", {
    type: "text",
    name: spec.name,
    title,
    value: value ?? "",
    onchange: (e) => onChange(e.target.value || undefined),
  });
}
