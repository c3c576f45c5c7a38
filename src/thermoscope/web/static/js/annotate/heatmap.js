/**
 * The heat map of the model that pre-annotated a frame (anomaly map or class activation,
 * 0..1, `GET /frames/{fid}/heatmap`), as a translucent image the viewer lays over the
 * thermogram: transparent where the model saw nothing, opaque magenta where it looked most.
 * @module annotate/heatmap
 */

import { send } from "../api.js";
import { parseFrame } from "../thermal.js";

/** Heat-map values below this are left transparent (0..1). */
const FLOOR = 0.05;
/** Opacity of the strongest value (0..255). */
const MAX_ALPHA = 200;

/**
 * The model's heat map of a frame.
 * @param {string} frameId
 * @returns {Promise<{width: number, height: number, values: Float32Array, peak: number[]}>}
 *   `peak`: [column, row] of the largest value
 */
export async function loadHeatmap(frameId) {
  const response = await send("GET", `/frames/${encodeURIComponent(frameId)}/heatmap`);
  const width = Number(response.headers.get("X-Width"));
  const height = Number(response.headers.get("X-Height"));
  const values = parseFrame(await response.arrayBuffer(), width, height).celsius;
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if (values[i] > values[best]) best = i;
  return { width, height, values, peak: [best % width, Math.floor(best / width)] };
}

/**
 * The heat map as an RGBA image of the frame's size: magenta with opacity rising with the
 * value (0..1, clamped), transparent below `FLOOR` and for NaN.
 * @param {{width: number, height: number, values: Float32Array}} heat
 * @returns {HTMLCanvasElement}
 */
export function heatImage(heat) {
  const canvas = document.createElement("canvas");
  canvas.width = heat.width;
  canvas.height = heat.height;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const image = ctx.createImageData(heat.width, heat.height);
  const rgba = image.data;
  for (let i = 0; i < heat.values.length; i += 1) {
    const v = heat.values[i];
    const o = i * 4;
    rgba[o] = 255;
    rgba[o + 1] = 0;
    rgba[o + 2] = 255;
    rgba[o + 3] = v === v && v > FLOOR ? Math.round(Math.min(1, v) * MAX_ALPHA) : 0;
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}
