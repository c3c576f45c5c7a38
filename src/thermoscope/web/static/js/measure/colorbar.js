/**
 * The colour bar beside a thermogram: the palette as a vertical strip, °C ticks chosen as
 * `thermoscope.render.colorbar.nice_ticks` chooses them, and the isotherm and saturation
 * colours marked where they apply.
 * @module measure/colorbar
 */

import { LUT_SIZE } from "../palettes.js";
import { fill, h } from "../dom.js";

/** Most tick labels on a bar, as the server's rendered colour bar. */
export const MAX_TICKS = 8;

/**
 * Round tick values in [lo, hi] °C, at most `maxCount` of them, and their decimals: steps of
 * 1, 2, 2.5 or 5 times a power of ten (the same values as the Python `nice_ticks`).
 * @param {number} lo
 * @param {number} hi
 * @param {number} [maxCount]
 * @returns {{ticks: number[], decimals: number}}
 */
export function niceTicks(lo, hi, maxCount = MAX_TICKS) {
  if (maxCount < 2 || !((hi - lo) / (maxCount - 1) > 0)) return { ticks: [], decimals: 0 };
  const raw = (hi - lo) / (maxCount - 1);
  const exponent = Math.floor(Math.log10(raw));
  const mantissa = /** @type {number} */ (
    [1, 2, 2.5, 5, 10].find((m) => m * 10 ** exponent >= raw)
  );
  const step = mantissa * 10 ** exponent;
  const decimals = Math.max(
    0,
    -exponent + (mantissa === 2.5 ? 1 : 0) - (mantissa === 10 ? 1 : 0),
  );
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  const ticks = [];
  for (let k = first; k <= last; k += 1) ticks.push(roundTo(k * step, decimals) + 0);
  return { ticks, decimals };
}

/**
 * `value` rounded to `decimals` places, half to even as Python's `round`.
 * @param {number} value
 * @param {number} decimals
 * @returns {number}
 */
function roundTo(value, decimals) {
  const scale = 10 ** decimals;
  const x = value * scale;
  const r = Math.round(x);
  const halfway = Math.abs(x - Math.trunc(x)) === 0.5;
  return (halfway && r % 2 !== 0 ? r - 1 : r) / scale;
}

/**
 * Draw the colour bar into `host`: a strip (hottest at the top) and one tick per value.
 * @param {HTMLElement} host
 * @param {import("../palettes.js").PackedPalette} pal
 * @param {number} low °C at the bottom
 * @param {number} high °C at the top
 * @param {import("./paint.js").Marks} marks isotherm band and saturation colours
 */
export function drawColorBar(host, pal, low, high, marks) {
  const strip = /** @type {HTMLCanvasElement} */ (
    h("canvas", { class: "colorbar-strip", width: 1, height: LUT_SIZE })
  );
  const c = /** @type {CanvasRenderingContext2D} */ (strip.getContext("2d"));
  const image = c.createImageData(1, LUT_SIZE);
  const out = new Uint32Array(image.data.buffer);
  const span = high - low;
  for (let i = 0; i < LUT_SIZE; i += 1) {
    const entry = LUT_SIZE - 1 - i;
    const value = low + ((entry + 0.5) / LUT_SIZE) * span;
    const iso = marks.isotherm;
    out[i] = iso && value >= iso.lo && value <= iso.hi ? iso.rgba : pal.rgba[entry];
  }
  c.putImageData(image, 0, 0);
  const { ticks, decimals } = niceTicks(low, high);
  const tickEls = ticks.map((t) => {
    const tick = h("span", { class: "tick", dataset: { value: String(t) } }, t.toFixed(decimals));
    tick.style.bottom = `${(((t - low) / span) * 100).toFixed(3)}%`; // CSSOM: allowed by the CSP
    return tick;
  });
  /** @param {"above" | "below"} side @param {number | null} rgba @param {string} title */
  const saturation = (side, rgba, title) => {
    if (rgba === null) return null;
    const el = h("span", { class: `saturation ${side}`, title });
    el.style.background = cssColor(rgba);
    return el;
  };
  fill(
    host,
    h("span", { class: "colorbar-unit" }, "°C"),
    saturation("above", marks.above, `above ${high.toFixed(2)} °C`),
    h("div", { class: "colorbar-body" }, strip, h("div", { class: "ticks" }, tickEls)),
    saturation("below", marks.below, `below ${low.toFixed(2)} °C`),
  );
  host.dataset.low = String(low);
  host.dataset.high = String(high);
  host.dataset.ticks = JSON.stringify(ticks);
}

/**
 * The CSS colour of a packed RGBA pixel.
 * @param {number} rgba
 * @returns {string}
 */
export function cssColor(rgba) {
  const [r, g, b] = new Uint8Array(new Uint32Array([rgba]).buffer);
  return `rgb(${r}, ${g}, ${b})`;
}
