/**
 * Painting for measurement: the palette, then the isotherm band and the saturation colours
 * (pixels colder than the display range's low end, hotter than its high end) on top, as
 * thermographers know them from camera makers' tools. Isotherm bounds are inclusive, as
 * `thermoscope.render.Isotherm`'s.
 * @module measure/paint
 */

import { paint } from "../thermal.js";

/**
 * What is painted over the palette; packed RGBA colours, null when off.
 * @typedef {object} Marks
 * @property {{lo: number, hi: number, rgba: number} | null} isotherm band in °C, inclusive
 * @property {number | null} below colour of pixels below the display range
 * @property {number | null} above colour of pixels above the display range
 */

/**
 * Paint °C values with a palette and the marks (one pass for the palette, one for the marks).
 * @param {Float32Array} celsius
 * @param {Uint32Array} out packed RGBA pixels
 * @param {import("../palettes.js").PackedPalette} pal
 * @param {number} low °C
 * @param {number} high °C
 * @param {Marks} marks
 */
export function paintMarked(celsius, out, pal, low, high, marks) {
  paint(celsius, out, pal, low, high);
  const iso = marks.isotherm;
  const { below, above } = marks;
  if (!iso && below === null && above === null) return;
  for (let i = 0, n = celsius.length; i < n; i += 1) {
    const v = celsius[i];
    if (v !== v) continue;
    if (iso && v >= iso.lo && v <= iso.hi) out[i] = iso.rgba;
    else if (below !== null && v < low) out[i] = below;
    else if (above !== null && v > high) out[i] = above;
  }
}
