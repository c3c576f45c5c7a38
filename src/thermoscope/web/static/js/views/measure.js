/**
 * The measure view of a frame, as thermographers know it from camera makers' tools: the
 * thermogram with a °C colour bar, an isotherm band and saturation colours, a spot meter
 * (crosshair and °C at the cursor, fixed spots), the camera and measurement parameters, and
 * the °C recomputed with another emissivity / reflected temperature for the frame or one
 * region (`POST /frames/{fid}/celsius/recompute`: a view for this user, nothing is stored).
 * @module views/measure
 */

import * as api from "../api.js";
import { celsiusText, fill, h } from "../dom.js";
import { PALETTES, packRgba, palette } from "../palettes.js";
import { shapeStats } from "../shapes.js";
import { autoRange, frameStats, parseFrame } from "../thermal.js";
import { visibleOn } from "../annotate/records.js";
import { drawColorBar } from "../measure/colorbar.js";
import { fusionToggle } from "../measure/fusion.js";
import { renderParameters } from "../measure/params.js";
import { drawSpots, renderSpotList } from "../measure/spots.js";
import { MeasureViewer } from "../measure/viewer.js";

/** Default mark colours: isotherm green, below range blue, above range red (sRGB). */
const ISOTHERM_RGB = "#00ff00";
const BELOW_RGB = "#0000ff";
const ABOVE_RGB = "#ff0000";
const AREA_SHAPES = new Set(["box", "rotated_box", "polygon", "mask"]);

/**
 * The packed RGBA of a `#rrggbb` colour.
 * @param {string} hex
 * @returns {number}
 */
function packHex(hex) {
  const n = parseInt(hex.slice(1), 16);
  return packRgba((n >> 16) & 255, (n >> 8) & 255, n & 255);
}

/**
 * A labelled input.
 * @param {string} label
 * @param {Record<string, any>} attrs
 * @returns {[HTMLElement, HTMLInputElement]}
 */
function field(label, attrs) {
  const input = /** @type {HTMLInputElement} */ (h("input", attrs));
  return [h("label", {}, label, input), input];
}

/** @type {import("../main.js").View} */
export async function renderMeasure(root, params, ctx) {
  const fid = params.fid;
  const info = await api.get(`/frames/${fid}`);
  const index = Math.max(0, Math.min(Number(params.frame || 0), info.frame_count - 1));
  const [project, saved, stored] = await Promise.all([
    api.get(`/projects/${info.project_id}`),
    api.get(`/frames/${fid}/annotations`),
    api.celsius(fid, index),
  ]);
  ctx.setCrumbs([
    ["Projects", "#/"],
    [project.name, `#/p/${project.id}`],
    [info.filename || fid.slice(0, 12), `#/f/${fid}`],
    ["Measure"],
  ]);
  root.className = "view measure-view";
  const regions = visibleOn(saved.item, index)
    .filter((v) => AREA_SHAPES.has(v.shape?.type))
    .map((v, i) => ({ id: v.record.id, name: `${v.record.label} #${i + 1}`, shape: v.shape }));

  const state = {
    frame: stored,
    /** @type {import("../measure/spots.js").Spot[]} */
    spots: [],
    /** @type {import("../measure/spots.js").Spot | null} */
    cursor: null,
  };

  const canvas = /** @type {HTMLCanvasElement} */ (
    h("canvas", { class: "thermogram", tabindex: 0, dataset: { frameId: fid } })
  );
  const canvasHost = h("div", { class: "canvas-host" }, canvas); // the viewer sizes to it
  const bar = h("div", { class: "scale-bar", "aria-label": "Colour bar" });
  const cursorText = h("span", { class: "spot-cursor", "aria-live": "off" }, "—");
  const cursorPos = h("span", { class: "cursor-pos" }, "—");
  const stats = h("div", { class: "measure-stats" });
  const spotHost = h("div", { class: "spots" });
  const paramHost = h("section", { class: "panel params" });
  // the fused views of a frame whose file carries a visual photo, shown instead of the canvas
  const fusedImage = /** @type {HTMLImageElement} */ (
    h("img", {
      class: "fused-view",
      hidden: true,
      style: "flex: 1; min-width: 0; object-fit: contain",
    })
  );
  const fusionHost = h("section", { class: "panel fusion", hidden: true });
  let fusion = { refresh: () => {} };

  const viewer = new MeasureViewer(canvas, (c) =>
    drawSpots(c, viewer, state.spots, state.cursor),
  );

  // ---- display controls ---------------------------------------------------------------------
  const [lowLabel, lowInput] = field("Low °C", { type: "number", step: "any", name: "low" });
  const [highLabel, highInput] = field("High °C", { type: "number", step: "any", name: "high" });
  const paletteSelect = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { name: "palette", onchange: () => redraw(true) },
      PALETTES.map((p) => h("option", { value: p.name }, p.name)),
    )
  );
  const [isoOnLabel, isoOn] = field("Isotherm", { type: "checkbox", name: "isotherm" });
  const [isoLoLabel, isoLo] = field("from °C", { type: "number", step: "any", name: "iso_lo" });
  const [isoHiLabel, isoHi] = field("to °C", { type: "number", step: "any", name: "iso_hi" });
  const [isoColorLabel, isoColor] = field("colour", {
    type: "color",
    name: "iso_color",
    value: ISOTHERM_RGB,
  });
  const [satOnLabel, satOn] = field("Saturation colours", {
    type: "checkbox",
    name: "saturation",
  });
  const [belowLabel, belowColor] = field("below", {
    type: "color",
    name: "below_color",
    value: BELOW_RGB,
  });
  const [aboveLabel, aboveColor] = field("above", {
    type: "color",
    name: "above_color",
    value: ABOVE_RGB,
  });
  const display = h(
    "form",
    {
      class: "panel display",
      onchange: () => {
        redraw(true);
        fusion.refresh();
      },
      onsubmit: (/** @type {Event} */ e) => e.preventDefault(),
    },
    h("h3", {}, "Display"),
    h("div", { class: "row" }, lowLabel, highLabel),
    h("label", {}, "Palette", paletteSelect),
    h("div", { class: "row" }, isoOnLabel, isoColorLabel),
    h("div", { class: "row" }, isoLoLabel, isoHiLabel),
    h("div", { class: "row" }, satOnLabel, belowLabel, aboveLabel),
    h(
      "button",
      {
        type: "button",
        class: "ghost",
        onclick: () => {
          setAutoRange();
          redraw(true);
        },
      },
      "Auto range",
    ),
  );

  fill(
    root,
    h(
      "div",
      { class: "measure" },
      h(
        "section",
        { class: "stage" },
        h("div", { class: "measure-image" }, canvasHost, fusedImage, bar),
        h("div", { class: "statusbar" }, cursorPos, cursorText),
      ),
      h(
        "aside",
        { class: "sidebar" },
        h(
          "div",
          { class: "panel-links" },
          h("a", { href: `#/f/${fid}?frame=${index}` }, "‹ Annotate"),
          info.frame_count > 1 && [
            ` · frame ${index + 1} / ${info.frame_count} `,
            index > 0 && h("a", { href: `#/f/${fid}/measure?frame=${index - 1}` }, "previous"),
            " ",
            index + 1 < info.frame_count &&
              h("a", { href: `#/f/${fid}/measure?frame=${index + 1}` }, "next"),
          ],
        ),
        paramHost,
        display,
        fusionHost,
        h("section", { class: "panel" }, h("h3", {}, "Statistics"), stats),
        h("section", { class: "panel" }, h("h3", {}, "Spots"), spotHost),
      ),
    ),
  );

  // ---- behaviour ------------------------------------------------------------------------------
  function setAutoRange() {
    const range = autoRange(state.frame) ?? [0, 1];
    lowInput.value = range[0].toFixed(2);
    highInput.value = range[1].toFixed(2);
    const mid = range[0] + (range[1] - range[0]) * 0.8;
    if (!isoLo.value) isoLo.value = mid.toFixed(1);
    if (!isoHi.value) isoHi.value = range[1].toFixed(1);
  }

  /** @param {import("../measure/spots.js").Spot} s */
  const celsiusAt = (s) => state.frame.celsius[s.row * state.frame.width + s.col];

  /** @param {boolean} repaint the colours changed (not only the readouts) */
  function redraw(repaint) {
    const low = Number(lowInput.value);
    const high = Number(highInput.value);
    /** @type {import("../measure/paint.js").Marks} */
    const marks = {
      isotherm:
        isoOn.checked && Number(isoHi.value) >= Number(isoLo.value)
          ? { lo: Number(isoLo.value), hi: Number(isoHi.value), rgba: packHex(isoColor.value) }
          : null,
      below: satOn.checked ? packHex(belowColor.value) : null,
      above: satOn.checked ? packHex(aboveColor.value) : null,
    };
    if (repaint && high > low) {
      viewer.paletteName = paletteSelect.value;
      viewer.marks = marks;
      viewer.setRange(low, high);
      drawColorBar(bar, palette(paletteSelect.value), low, high, marks);
    }
    renderSpotList(spotHost, state.spots, celsiusAt, (i) => {
      state.spots.splice(i, 1);
      redraw(false);
      viewer.draw();
    });
    drawStats();
    showCursor();
  }

  function drawStats() {
    const whole = frameStats(state.frame.celsius);
    const row = (/** @type {string} */ name, /** @type {any} */ s) =>
      h(
        "tr",
        { dataset: { stats: name } },
        h("th", {}, name),
        ["min", "max", "mean"].map((k) =>
          h("td", { class: "num", dataset: { stat: k, value: String(s[k]) } }, celsiusText(s[k])),
        ),
      );
    const { width, height, celsius } = state.frame;
    fill(
      stats,
      h(
        "table",
        { class: "table compact" },
        h(
          "thead",
          {},
          h("tr", {}, h("th", {}, ""), ["Min", "Max", "Mean"].map((c) => h("th", {}, c))),
        ),
        h(
          "tbody",
          {},
          row("Frame", whole),
          regions.map((r) => row(r.name, shapeStats(celsius, width, height, r.shape))),
        ),
      ),
    );
  }

  function showCursor() {
    const s = state.cursor;
    cursorPos.textContent = s ? `x ${s.col} · y ${s.row}` : "—";
    cursorText.textContent = s ? celsiusText(celsiusAt(s)) : "—";
  }

  /** @param {PointerEvent | MouseEvent} event */
  function pixelOf(event) {
    const [fx, fy] = viewer.toFrame(event);
    const p = viewer.probe(fx, fy);
    return p ? { col: p.col, row: p.row } : null;
  }

  canvas.addEventListener("pointermove", (event) => {
    state.cursor = pixelOf(event);
    showCursor();
    viewer.draw();
  });
  canvas.addEventListener("pointerleave", () => {
    state.cursor = null;
    showCursor();
    viewer.draw();
  });
  canvas.addEventListener("click", (event) => {
    const spot = pixelOf(event);
    if (!spot) return;
    state.spots.push(spot);
    redraw(false);
    viewer.draw();
  });
  canvas.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      const rect = canvas.getBoundingClientRect();
      viewer.zoomAt(
        event.deltaY < 0 ? 1.2 : 1 / 1.2,
        event.clientX - rect.left,
        event.clientY - rect.top,
      );
    },
    { passive: false },
  );

  /** @param {import("../thermal.js").Frame} frame */
  function show(frame) {
    state.frame = frame;
    viewer.setFrame(frame);
    redraw(true);
  }

  renderParameters(
    paramHost,
    info,
    regions,
    async (change) => {
      const response = await api.send("POST", `/frames/${fid}/celsius/recompute`, {
        frame: index,
        emissivity: change.emissivity,
        reflected_temp_c: change.reflected_temp_c,
        region: change.region?.shape ?? null,
      });
      const width = Number(response.headers.get("X-Width"));
      const height = Number(response.headers.get("X-Height"));
      show(parseFrame(await response.arrayBuffer(), width, height));
      canvas.dataset.recomputed = "true";
    },
    () => {
      show(stored);
      canvas.dataset.recomputed = "false";
    },
  );

  paletteSelect.value = "iron";
  viewer.setFrame(stored);
  setAutoRange();
  viewer.resize();
  redraw(true);
  const fusionStage = {
    fid,
    index,
    canvasHost,
    image: fusedImage,
    palette: () => paletteSelect.value,
  };
  fusionToggle(fusionHost, fusionStage).then(
    (toggle) => (fusion = toggle),
    (/** @type {Error} */ error) => {
      fusionHost.hidden = false;
      fill(fusionHost, h("h3", {}, "Visual photo"), h("p", { class: "error" }, error.message));
    },
  );
  return () => viewer.dispose();
}
