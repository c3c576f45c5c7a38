/**
 * Colour palettes: the control points of `thermoscope.render.palettes`, expanded in the
 * browser to the same 256-entry tables (linear interpolation in sRGB, rounded half to even
 * as NumPy's `rint`). A browser test compares every table with the Python one.
 * @module palettes
 */

/** Entries in every lookup table. */
export const LUT_SIZE = 256;

const BLACK = [0, 0, 0];
const WHITE = [255, 255, 255];
const NEUTRAL_NAN = [128, 128, 128];
/** NaN colour of the grey palettes, where a neutral grey would pass for a temperature. */
const GREY_NAN = [190, 70, 190];

/**
 * @typedef {object} PaletteSpec
 * @property {string} name
 * @property {string} description
 * @property {Array<[number, number[]]>} stops positions 0..1 (rising) and RGB colours
 * @property {number[]} nan RGB colour of pixels without a temperature
 */

/** @type {PaletteSpec[]} */
export const PALETTES = [
  {
    name: "iron",
    description: "black, deep blue and purple through red and orange to yellow and white",
    stops: [
      [0.0, BLACK],
      [0.1, [20, 0, 75]],
      [0.25, [95, 0, 150]],
      [0.4, [170, 20, 130]],
      [0.55, [220, 60, 40]],
      [0.7, [245, 130, 0]],
      [0.85, [255, 200, 30]],
      [0.95, [255, 240, 140]],
      [1.0, WHITE],
    ],
    nan: NEUTRAL_NAN,
  },
  {
    name: "rainbow",
    description: "dark blue, cyan, green, yellow, orange and red, ending in white",
    stops: [
      [0.0, [10, 0, 40]],
      [0.12, [0, 0, 200]],
      [0.28, [0, 170, 230]],
      [0.42, [0, 200, 80]],
      [0.55, [120, 220, 0]],
      [0.66, [250, 240, 0]],
      [0.78, [255, 140, 0]],
      [0.9, [230, 20, 0]],
      [1.0, WHITE],
    ],
    nan: NEUTRAL_NAN,
  },
  {
    name: "rainbow-hc",
    description: "high-contrast rainbow: many narrow hue bands alternating in brightness",
    stops: [
      [0.0, BLACK],
      [0.07, [60, 0, 120]],
      [0.14, [0, 0, 255]],
      [0.21, [0, 120, 255]],
      [0.28, [0, 230, 255]],
      [0.35, [0, 140, 60]],
      [0.42, [0, 255, 0]],
      [0.5, [180, 255, 0]],
      [0.57, [255, 255, 0]],
      [0.64, [255, 170, 0]],
      [0.71, [255, 60, 0]],
      [0.78, [180, 0, 0]],
      [0.85, [255, 0, 160]],
      [0.92, [255, 140, 230]],
      [1.0, WHITE],
    ],
    nan: NEUTRAL_NAN,
  },
  {
    name: "white-hot",
    description: "black (cold) to white (hot)",
    stops: [
      [0.0, BLACK],
      [1.0, WHITE],
    ],
    nan: GREY_NAN,
  },
  {
    name: "black-hot",
    description: "white (cold) to black (hot)",
    stops: [
      [0.0, WHITE],
      [1.0, BLACK],
    ],
    nan: GREY_NAN,
  },
  {
    name: "lava",
    description: "black and dark violet through crimson and red to orange and yellow",
    stops: [
      [0.0, BLACK],
      [0.18, [30, 15, 60]],
      [0.35, [110, 10, 40]],
      [0.52, [200, 20, 10]],
      [0.68, [240, 90, 0]],
      [0.82, [255, 160, 0]],
      [0.93, [255, 225, 50]],
      [1.0, [255, 255, 190]],
    ],
    nan: NEUTRAL_NAN,
  },
  {
    name: "arctic",
    description: "navy and blues for most of the range, a sand-gold hot end fading to white",
    stops: [
      [0.0, [0, 0, 30]],
      [0.2, [10, 30, 110]],
      [0.4, [20, 80, 180]],
      [0.55, [50, 140, 225]],
      [0.68, [120, 190, 240]],
      [0.8, [215, 195, 150]],
      [0.9, [250, 205, 60]],
      [1.0, [255, 250, 225]],
    ],
    nan: NEUTRAL_NAN,
  },
  {
    name: "grey",
    description: "linear greyscale, black (cold) to white (hot)",
    stops: [
      [0.0, BLACK],
      [1.0, WHITE],
    ],
    nan: GREY_NAN,
  },
];

/**
 * Round half to even, as NumPy's `rint`.
 * @param {number} v
 * @returns {number}
 */
function rint(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * One channel of the stops at `x`, as `numpy.interp` computes it.
 * @param {Array<[number, number[]]>} stops
 * @param {number} channel 0, 1 or 2
 * @param {number} x position 0..1
 * @returns {number}
 */
function interp(stops, channel, x) {
  const last = stops.length - 1;
  if (x >= stops[last][0]) return stops[last][1][channel];
  let j = 0;
  while (x >= stops[j + 1][0]) j += 1;
  const [x0, c0] = stops[j];
  if (x === x0) return c0[channel];
  const [x1, c1] = stops[j + 1];
  const slope = (c1[channel] - c0[channel]) / (x1 - x0);
  return slope * (x - x0) + c0[channel];
}

/**
 * The RGB lookup table of a palette: `LUT_SIZE * 3` bytes, index 0 = coldest.
 * @param {PaletteSpec} spec
 * @returns {Uint8Array}
 */
export function rgbTable(spec) {
  const out = new Uint8Array(LUT_SIZE * 3);
  const step = 1 / (LUT_SIZE - 1);
  for (let i = 0; i < LUT_SIZE; i += 1) {
    const x = i === LUT_SIZE - 1 ? 1 : i * step;
    for (let ch = 0; ch < 3; ch += 1) out[i * 3 + ch] = rint(interp(spec.stops, ch, x));
  }
  return out;
}

/**
 * Pack an RGB colour as one opaque RGBA pixel of a `Uint32Array` view on `ImageData`
 * (the platform's byte order).
 * @param {number} r
 * @param {number} g
 * @param {number} b
 * @returns {number}
 */
export function packRgba(r, g, b) {
  const bytes = new Uint8Array([r, g, b, 255]);
  return new Uint32Array(bytes.buffer)[0];
}

/**
 * A palette ready to paint: packed RGBA table and NaN colour.
 * @typedef {object} PackedPalette
 * @property {string} name
 * @property {Uint8Array} rgb `LUT_SIZE * 3` bytes
 * @property {Uint32Array} rgba `LUT_SIZE` packed pixels
 * @property {number} nan packed NaN pixel
 */

/** @type {Map<string, PackedPalette>} */
const cache = new Map();

/**
 * The packed palette called `name` (built once, then cached).
 * @param {string} name
 * @returns {PackedPalette}
 */
export function palette(name) {
  const hit = cache.get(name);
  if (hit) return hit;
  const spec = PALETTES.find((p) => p.name === name);
  if (!spec) throw new Error(`unknown palette ${name}`);
  const rgb = rgbTable(spec);
  const rgba = new Uint32Array(LUT_SIZE);
  for (let i = 0; i < LUT_SIZE; i += 1)
    rgba[i] = packRgba(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]);
  const packed = { name, rgb, rgba, nan: packRgba(...spec.nan) };
  cache.set(name, packed);
  return packed;
}
