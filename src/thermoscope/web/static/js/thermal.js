/**
 * Temperature frames in the browser: parse the server's float32 °C bytes, pick a display range
 * as `thermoscope.render.auto_range` does, and paint a frame into `ImageData` in one pass.
 * @module thermal
 */

import { LUT_SIZE } from "./palettes.js";

/** Automatic ranges look at about this many pixels at most (an even grid over larger frames). */
const STATS_PIXELS = 1 << 17;
/** Narrowest range (°C) rendered with contrast. */
const MIN_SPAN_C = 1e-3;
/** Half the span (°C) given to a flatter frame. */
const FLAT_HALF_SPAN_C = 0.5;

/**
 * A radiometric frame: row-major °C, NaN where undefined.
 * @typedef {object} Frame
 * @property {number} width
 * @property {number} height
 * @property {Float32Array} celsius `width * height` values
 */

/**
 * The frame in a response body of little-endian float32 °C (`X-Width`, `X-Height` headers).
 * @param {ArrayBuffer} buffer
 * @param {number} width
 * @param {number} height
 * @returns {Frame}
 */
export function parseFrame(buffer, width, height) {
  if (buffer.byteLength !== width * height * 4) {
    throw new Error(
      `frame data has ${buffer.byteLength} bytes, expected ${width}x${height} float32`,
    );
  }
  const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (littleEndianHost) return { width, height, celsius: new Float32Array(buffer) };
  const view = new DataView(buffer);
  const celsius = new Float32Array(width * height);
  for (let i = 0; i < celsius.length; i += 1) celsius[i] = view.getFloat32(i * 4, true);
  return { width, height, celsius };
}

/**
 * Linear-interpolation percentile of sorted values (as NumPy's default method).
 * @param {Float64Array} sorted
 * @param {number} p 0..100
 * @returns {number}
 */
function percentile(sorted, p) {
  const pos = ((sorted.length - 1) * p) / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * The automatic display range [low, high] °C: the 1st and 99th percentiles of the finite
 * pixels (sampled on an even grid on large frames); null when no pixel is finite.
 * @param {Frame} frame
 * @param {number[]} [percentiles] low and high, 0..100
 * @returns {number[] | null}
 */
export function autoRange(frame, percentiles = [1, 99]) {
  const { width, height, celsius } = frame;
  const stride = Math.ceil(Math.sqrt(celsius.length / STATS_PIXELS));
  const picked = new Float64Array(Math.ceil(height / stride) * Math.ceil(width / stride));
  let n = 0;
  for (let r = 0; r < height; r += stride) {
    for (let i = r * width, end = i + width; i < end; i += stride) {
      const v = celsius[i];
      if (Number.isFinite(v)) picked[n++] = v;
    }
  }
  if (n === 0) return null;
  const sorted = picked.subarray(0, n).sort();
  const lo = percentile(sorted, percentiles[0]);
  const hi = percentile(sorted, percentiles[1]);
  if (hi - lo < MIN_SPAN_C) {
    const centre = (lo + hi) / 2;
    const half = Math.max(FLAT_HALF_SPAN_C, Math.abs(centre) * 1e-6);
    return [centre - half, centre + half];
  }
  return [lo, hi];
}

/**
 * Min, max and mean of the finite pixels (NaN when none).
 * @param {Float32Array} celsius
 * @returns {{min: number, max: number, mean: number}}
 */
export function frameStats(celsius) {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let n = 0;
  for (let i = 0; i < celsius.length; i += 1) {
    const v = celsius[i];
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    n += 1;
  }
  return n ? { min, max, mean: sum / n } : { min: NaN, max: NaN, mean: NaN };
}

/**
 * Paint °C values as palette colours: `low` maps to the coldest entry, `high` to the hottest,
 * colder and hotter pixels take the end colours, NaN the palette's NaN colour.
 * One pass, no allocation.
 * @param {Float32Array} celsius
 * @param {Uint32Array} out packed RGBA pixels (a view on `ImageData.data.buffer`)
 * @param {import("./palettes.js").PackedPalette} pal
 * @param {number} low °C
 * @param {number} high °C
 */
export function paint(celsius, out, pal, low, high) {
  const top = LUT_SIZE - 1;
  const scale = top / Math.max(high - low, MIN_SPAN_C);
  const offset = 0.5 - low * scale;
  const table = pal.rgba;
  const nan = pal.nan;
  for (let i = 0, n = celsius.length; i < n; i += 1) {
    const v = celsius[i];
    if (v !== v) {
      out[i] = nan;
      continue;
    }
    const k = v * scale + offset;
    out[i] = table[k <= 0 ? 0 : k >= top ? top : k | 0];
  }
}
