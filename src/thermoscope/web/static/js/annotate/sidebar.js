/**
 * The annotate view's side panels: display (palette, level and span), labels, the selected
 * object (label, attributes, temperatures, keyframes), the objects on the frame, the verdict
 * and the inspection's findings.
 * @module annotate/sidebar
 */

import { celsiusText, fill, h } from "../dom.js";
import { PALETTES, palette } from "../palettes.js";
import { shapeStats } from "../shapes.js";
import { frameStats } from "../thermal.js";
import { attributeInput, labelSpec } from "./labels.js";
import { labelColor } from "./overlay.js";
import { frameVerdict, isMachineDraft, itemVerdict, visibleOn } from "./records.js";

/**
 * What the panels read and do (the annotate view's controller).
 * @typedef {object} Controller
 * @property {any} state index, tool, label, selected, trackMode, user, frameInfo, project
 * @property {() => any} item
 * @property {string[]} labels label names in schema order
 * @property {any} schema
 * @property {import("./viewer.js").Viewer} viewer
 * @property {(id: string | null) => void} select
 * @property {(label: string) => void} chooseLabel
 * @property {(id: string, label: string, attributes: Record<string, any>) => void} relabel
 * @property {(id: string) => void} remove
 * @property {(id: string) => void} accept
 * @property {(id: string) => void} reject
 * @property {(verdict: "OK" | "NG", frameScoped: boolean) => void} verdict
 * @property {(id: string, frame: number) => void} removeKeyframe
 * @property {(frame: number) => void} goto
 * @property {(name: string) => void} setPalette
 * @property {(low: number, high: number) => void} setRange
 * @property {() => void} autoRange
 * @property {(x: number, y: number) => void} centreOn
 * @property {(on: boolean) => void} toggleHeatmap show or hide the model's heat map
 */

/** Findings order: NG first, OK last. */
const SEVERITY = { NG: 0, WARN: 1, OK: 2 };

/**
 * A titled panel.
 * @param {string} title
 * @param {string} cls
 * @param {...any} children
 * @returns {HTMLElement}
 */
function panel(title, cls, ...children) {
  return h("section", { class: `panel ${cls}` }, h("h2", {}, title), ...children);
}

/**
 * A colour bar of the palette between the range ends.
 * @param {string} name
 * @returns {HTMLCanvasElement}
 */
function colorbar(name) {
  const canvas = /** @type {HTMLCanvasElement} */ (
    h("canvas", { width: 256, height: 1, class: "colorbar" })
  );
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const image = ctx.createImageData(256, 1);
  new Uint32Array(image.data.buffer).set(palette(name).rgba);
  ctx.putImageData(image, 0, 0);
  return canvas;
}

/**
 * Display: palette, colour bar, range inputs and the frame's statistics.
 * @param {Controller} ctl
 * @returns {HTMLElement}
 */
function displayPanel(ctl) {
  const { viewer } = ctl;
  const frame = viewer.frame;
  const stats = frame ? frameStats(frame.celsius) : null;
  const rangeInput = (value, name) =>
    h("input", {
      type: "number",
      step: "0.1",
      name,
      value: value.toFixed(2),
      onchange: (e) => {
        const v = Number(e.target.value);
        if (!Number.isFinite(v)) return;
        if (name === "low") ctl.setRange(v, viewer.high);
        else ctl.setRange(viewer.low, v);
      },
    });
  return panel(
    "Display",
    "display",
    h(
      "label",
      { class: "row" },
      "Palette",
      h(
        "select",
        {
          name: "palette",
          value: viewer.paletteName,
          onchange: (e) => ctl.setPalette(e.target.value),
        },
        PALETTES.map((p) => h("option", { value: p.name, title: p.description }, p.name)),
      ),
    ),
    colorbar(viewer.paletteName),
    h(
      "div",
      { class: "range" },
      rangeInput(viewer.low, "low"),
      h("span", { class: "muted" }, "°C"),
      rangeInput(viewer.high, "high"),
    ),
    h(
      "div",
      { class: "row" },
      h(
        "span",
        { class: "muted small" },
        `level ${((viewer.low + viewer.high) / 2).toFixed(2)} · span ${(viewer.high - viewer.low).toFixed(2)}`,
      ),
      h(
        "button",
        {
          type: "button",
          class: "small",
          title: "1st – 99th percentile (L)",
          onclick: () => ctl.autoRange(),
        },
        "Auto",
      ),
    ),
    ctl.state.frameInfo.heatmap &&
      h(
        "label",
        { class: "row heatmap-toggle", title: "the model's anomaly or class-activation map" },
        h("input", {
          type: "checkbox",
          name: "heatmap",
          checked: Boolean(ctl.state.heatmap),
          onchange: (e) => ctl.toggleHeatmap(e.target.checked),
        }),
        `Heat map of ${ctl.state.frameInfo.model_version}`,
      ),
    stats &&
      h(
        "dl",
        { class: "facts compact" },
        h("dt", {}, "Frame min"),
        h("dd", {}, celsiusText(stats.min)),
        h("dt", {}, "Frame max"),
        h("dd", {}, celsiusText(stats.max)),
        h("dt", {}, "Frame mean"),
        h("dd", {}, celsiusText(stats.mean)),
      ),
  );
}

/**
 * Labels of the schema, with their keys; the current one highlighted.
 * @param {Controller} ctl
 * @returns {HTMLElement}
 */
function labelsPanel(ctl) {
  return panel(
    "Labels",
    "labels",
    ctl.labels.length
      ? h(
          "ul",
          { class: "label-list" },
          ctl.labels.map((name, i) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: `label-choice${name === ctl.state.label ? " active" : ""}`,
                  title: labelSpec(ctl.schema, name)?.description || name,
                  onclick: () => ctl.chooseLabel(name),
                },
                h("span", { class: "swatch", style: `background:${labelColor(ctl.labels, name)}` }),
                h("span", { class: "label-name" }, name),
                i < 9 && h("kbd", {}, String(i + 1)),
              ),
            ),
          ),
        )
      : h(
          "p",
          { class: "muted small" },
          "This project has no labels yet; an admin sets the label schema.",
        ),
  );
}

/**
 * Who made a record, for people.
 * @param {any} p provenance
 * @returns {string}
 */
function madeBy(p) {
  const score = p.score === null || p.score === undefined ? "" : ` (score ${p.score.toFixed(2)})`;
  if (p.author && p.model) return `${p.author}, from ${p.model}${score}`;
  return p.author || `${p.model} ${p.model_version}${score}`.trim();
}

/**
 * What made a machine draft, for its badge: "learned 0.93" for a model's (with its score),
 * "recipe" for a recipe rule's; null for people's records.
 * @param {any} record
 * @returns {{kind: string, text: string} | null}
 */
export function draftKind(record) {
  if (!isMachineDraft(record)) return null;
  const p = record.provenance;
  if (String(p.model).startsWith("recipe:")) return { kind: "recipe", text: "recipe" };
  const score = typeof p.score === "number" ? ` ${p.score.toFixed(2)}` : "";
  return { kind: "learned", text: `learned${score}` };
}

/**
 * The selected object: label, attributes, temperatures inside it, keyframes.
 * @param {Controller} ctl
 * @returns {HTMLElement}
 */
function selectionPanel(ctl) {
  const { state } = ctl;
  const item = ctl.item();
  const visible = visibleOn(item, state.index).find((v) => v.record.id === state.selected);
  const record =
    visible?.record ?? [...item.annotations, ...item.tracks].find((r) => r.id === state.selected);
  if (!record)
    return panel(
      "Selection",
      "selection",
      h("p", { class: "muted small" }, "Click an object (V) or press Tab."),
    );
  const isTrack = "keyframes" in record;
  const spec = labelSpec(ctl.schema, record.label);
  const frame = ctl.viewer.frame;
  const stats =
    visible && frame ? shapeStats(frame.celsius, frame.width, frame.height, visible.shape) : null;
  const draft = isMachineDraft(record);
  const setAttr = (name, value) => {
    const attributes = { ...record.attributes };
    if (value === undefined) delete attributes[name];
    else attributes[name] = value;
    ctl.relabel(record.id, record.label, attributes);
  };
  return panel(
    "Selection",
    "selection",
    h(
      "div",
      { class: "row" },
      h("span", { class: "swatch", style: `background:${labelColor(ctl.labels, record.label)}` }),
      h(
        "select",
        {
          name: "label",
          value: record.label,
          onchange: (e) => ctl.relabel(record.id, e.target.value, record.attributes),
        },
        [...new Set([...ctl.labels, record.label])].map((name) =>
          h("option", { value: name }, name),
        ),
      ),
      h(
        "span",
        { class: "muted small" },
        isTrack ? "track" : (visible?.shape.type ?? record.shape.type),
      ),
    ),
    draft &&
      h(
        "div",
        { class: "draft-actions" },
        h("span", { class: "badge draft" }, "machine draft"),
        h("span", { class: `badge draft-kind ${draftKind(record)?.kind}` }, draftKind(record)?.text),
        h(
          "button",
          { type: "button", class: "small primary", onclick: () => ctl.accept(record.id) },
          "Accept (A)",
        ),
        h(
          "button",
          { type: "button", class: "small danger", onclick: () => ctl.reject(record.id) },
          "Reject (R)",
        ),
      ),
    stats &&
      h(
        "dl",
        { class: "facts compact temps", "aria-label": "temperatures of the selection" },
        h("dt", {}, "Max"),
        h("dd", { class: "t-max" }, celsiusText(stats.max)),
        h("dt", {}, "Mean"),
        h("dd", { class: "t-mean" }, celsiusText(stats.mean)),
        h("dt", {}, "Min"),
        h("dd", { class: "t-min" }, celsiusText(stats.min)),
        h("dt", {}, "Pixels"),
        h("dd", {}, String(stats.pixels)),
      ),
    spec?.attributes?.length
      ? h(
          "div",
          { class: "attributes" },
          spec.attributes.map((a) =>
            h(
              "label",
              { class: "row" },
              h("span", {}, a.name, a.required && h("span", { class: "req" }, " *")),
              attributeInput(a, record.attributes[a.name], (v) => setAttr(a.name, v)),
            ),
          ),
        )
      : null,
    isTrack &&
      h(
        "div",
        { class: "keyframes" },
        h("span", { class: "muted small" }, "Keyframes"),
        h(
          "div",
          { class: "chips" },
          record.keyframes.map((k) =>
            h(
              "span",
              {
                class: `chip${k.frame === state.index ? " active" : ""}${k.outside ? " outside" : ""}`,
              },
              h(
                "button",
                {
                  type: "button",
                  class: "link",
                  onclick: () => ctl.goto(k.frame),
                  title: k.outside ? "leaves the picture" : "go to frame",
                },
                `#${k.frame}`,
              ),
              record.keyframes.length > 1 &&
                h(
                  "button",
                  {
                    type: "button",
                    class: "link remove",
                    title: "remove keyframe",
                    onclick: () => ctl.removeKeyframe(record.id, k.frame),
                  },
                  "×",
                ),
            ),
          ),
        ),
      ),
    h(
      "p",
      { class: "muted small provenance" },
      `${madeBy(record.provenance)} · ${record.review.state}`,
      record.review.comment && h("span", { class: "comment" }, ` — “${record.review.comment}”`),
    ),
    h(
      "button",
      { type: "button", class: "small danger ghost", onclick: () => ctl.remove(record.id) },
      isTrack ? "Delete track" : "Delete",
    ),
  );
}

/**
 * The objects on this frame.
 * @param {Controller} ctl
 * @returns {HTMLElement}
 */
function objectsPanel(ctl) {
  const visible = visibleOn(ctl.item(), ctl.state.index);
  const drafts = visible.filter((v) => isMachineDraft(v.record)).length;
  return panel(
    `Objects (${visible.length})`,
    "objects",
    drafts
      ? h(
          "p",
          { class: "small draft-hint" },
          `${drafts} machine draft${drafts > 1 ? "s" : ""}: A accepts, R rejects`,
        )
      : null,
    visible.length
      ? h(
          "ul",
          { class: "object-list" },
          visible.map((v) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: `object${v.record.id === ctl.state.selected ? " active" : ""}`,
                  dataset: { recordId: v.record.id },
                  onclick: () => ctl.select(v.record.id),
                },
                h("span", {
                  class: "swatch",
                  style: `background:${labelColor(ctl.labels, v.record.label)}`,
                }),
                h("span", { class: "label-name" }, v.record.label),
                h(
                  "span",
                  { class: "muted small" },
                  v.kind === "track" ? `track${v.keyframe ? " ◆" : " ◇"}` : v.shape.type,
                ),
                isMachineDraft(v.record) && h("span", { class: "badge draft" }, "draft"),
                draftKind(v.record) &&
                  h(
                    "span",
                    {
                      class: `badge draft-kind ${draftKind(v.record)?.kind}`,
                      title: madeBy(v.record.provenance),
                    },
                    draftKind(v.record)?.text,
                  ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted small" }, "Nothing here yet: draw with B, P, M or X."),
  );
}

/**
 * The OK / NG verdict of the item (and of the current frame of a sequence).
 * @param {Controller} ctl
 * @returns {HTMLElement}
 */
function verdictPanel(ctl) {
  const item = ctl.item();
  const sequence = item.frame_count > 1;
  const row = (title, verdict, frameScoped) =>
    h(
      "div",
      { class: "verdict-row" },
      h("span", { class: "small muted" }, title),
      h(
        "div",
        { class: "verdict-buttons" },
        ["OK", "NG"].map((v) =>
          h(
            "button",
            {
              type: "button",
              class: `verdict-button ${v}${verdict?.verdict === v ? (isMachineDraft(verdict) ? " proposed" : " active") : ""}`,
              title: `${frameScoped ? "Shift + " : ""}${v === "OK" ? "O" : "N"}`,
              onclick: () => ctl.verdict(/** @type {"OK" | "NG"} */ (v), frameScoped),
            },
            v,
          ),
        ),
      ),
      verdict &&
        h(
          "p",
          { class: "small verdict-reason" },
          isMachineDraft(verdict)
            ? h("span", { class: "badge draft" }, "machine")
            : h("span", { class: "muted" }, verdict.provenance.author),
          verdict.reason ? ` ${verdict.reason}` : "",
        ),
    );
  return panel(
    "Verdict",
    "verdict",
    row(sequence ? "Whole sequence" : "Part", itemVerdict(item), false),
    sequence && row(`Frame ${ctl.state.index}`, frameVerdict(item, ctl.state.index), true),
  );
}

/**
 * A finding's value against its limit, saying which side the limit is on: "16.8 °C > max
 * 12.0 °C" (over a maximum), "8.1 °C ≥ min 5.0 °C" (inside a minimum). The side follows from
 * the verdict: the limit is the one crossed (NG), else the nearest (OK, WARN), so a value over
 * an NG limit or under an OK one is held against a maximum. The unit is the finding's, else the
 * one its explanation names ("… its 12 °C limit"), else °C.
 * @param {any} f a finding (`Finding.to_json()`, perhaps with `unit`)
 * @returns {string}
 */
export function findingText(f) {
  if (f.value === null || f.value === undefined) return "";
  const named = /its -?[\d.e+]+ (\S+) (?:warning )?limit/.exec(f.explanation ?? "");
  const unit = f.unit || named?.[1] || "°C";
  const shown = (v) => `${v.toFixed(1)} ${unit}`;
  if (f.limit === null || f.limit === undefined) return shown(f.value);
  const crossed = f.verdict === "NG";
  const isMax = crossed ? f.value > f.limit : f.value <= f.limit;
  const sign = crossed ? (isMax ? ">" : "<") : isMax ? "≤" : "≥";
  return `${shown(f.value)} ${sign} ${isMax ? "max" : "min"} ${shown(f.limit)}`;
}

/**
 * An inspection's findings split into the recipe's and the learned model's (rules
 * `model:<name>`), each group with the worst verdict of its findings.
 * @param {any} inspection `Inspection.to_json()`, or null
 * @returns {any[][]} [[source, {verdict, findings}], ...] of the non-empty groups
 */
export function machineGroups(inspection) {
  const all = inspection?.findings ?? [];
  const worst = (list) =>
    list.reduce((v, f) => (SEVERITY[f.verdict] < SEVERITY[v] ? f.verdict : v), "OK");
  return [
    ["Recipe", all.filter((f) => !String(f.rule).startsWith("model:"))],
    ["Model", all.filter((f) => String(f.rule).startsWith("model:"))],
  ]
    .filter(([, list]) => list.length)
    .map(([source, list]) => [source, { verdict: worst(list), findings: list }]);
}

/**
 * The inspection's findings (the edge's, and the recipe's and the model's at ingest); a click
 * shows the place.
 * @param {Controller} ctl
 * @returns {HTMLElement | null}
 */
function findingsPanel(ctl) {
  const info = ctl.state.frameInfo;
  const sources = [["Edge", info.findings], ...machineGroups(info.machine_findings)].filter(
    ([, inspection]) => inspection?.findings?.length,
  );
  if (!sources.length) return null;
  return panel(
    "Findings",
    "findings",
    sources.map(([source, inspection]) =>
      h(
        "div",
        { class: "finding-group" },
        h(
          "div",
          { class: "row small" },
          h("span", { class: "muted" }, source),
          h("span", { class: `badge verdict-${inspection.verdict}` }, inspection.verdict),
        ),
        h(
          "ul",
          { class: "finding-list" },
          [...inspection.findings]
            .sort((a, b) => SEVERITY[a.verdict] - SEVERITY[b.verdict])
            .map((f) =>
              h(
                "li",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: `finding ${f.verdict}`,
                    disabled: f.x === null || f.x === undefined,
                    onclick: () => ctl.centreOn(f.x + 0.5, f.y + 0.5),
                    title: f.explanation || f.rule,
                  },
                  h("span", { class: `dot verdict-${f.verdict}` }),
                  h(
                    "span",
                    { class: "label-name" },
                    `${f.rule}${f.region ? ` · ${f.region}` : ""}`,
                  ),
                  h("span", { class: "small muted finding-value" }, findingText(f)),
                ),
              ),
            ),
        ),
      ),
    ),
  );
}

/**
 * Redraw every panel into `host`.
 * @param {HTMLElement} host
 * @param {Controller} ctl
 */
export function renderSidebar(host, ctl) {
  const scroll = host.scrollTop;
  fill(
    host,
    displayPanel(ctl),
    labelsPanel(ctl),
    selectionPanel(ctl),
    objectsPanel(ctl),
    verdictPanel(ctl),
    findingsPanel(ctl),
  );
  host.scrollTop = scroll;
}
