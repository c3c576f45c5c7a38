/**
 * Drawing annotations over the thermogram: outlines with a dark halo (readable on any
 * palette), dashed outlines for machine drafts, tinted masks, label tags, edit handles.
 * @module annotate/overlay
 */

import { bounds, handles, maskPixels, outline } from "../shapes.js";

/** Outline colours by label index: bright, far from each other, clear of grey. */
const COLORS = [
  "#00e5ff",
  "#76ff03",
  "#ff4081",
  "#ffea00",
  "#b388ff",
  "#ff9e40",
  "#64ffda",
  "#ff80ab",
  "#c6ff00",
  "#82b1ff",
];
const UNKNOWN = "#b0bec5";
const HANDLE = 4;

/**
 * The colour of a label (by its place in the schema).
 * @param {string[]} labels names in schema order
 * @param {string} label
 * @returns {string}
 */
export function labelColor(labels, label) {
  const i = labels.indexOf(label);
  return i < 0 ? UNKNOWN : COLORS[i % COLORS.length];
}

/** @type {WeakMap<object, Map<string, HTMLCanvasElement>>} tinted mask images by shape and colour */
const tinted = new WeakMap();

/**
 * A frame-sized canvas with the mask's pixels in `color` (made once per mask and colour).
 * @param {import("../shapes.js").Shape} shape a mask
 * @param {string} color CSS hex colour
 * @returns {HTMLCanvasElement}
 */
function maskImage(shape, color) {
  let byColor = tinted.get(shape);
  if (!byColor) {
    byColor = new Map();
    tinted.set(shape, byColor);
  }
  const hit = byColor.get(color);
  if (hit) return hit;
  const [height, width] = shape.size;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const data = ctx.createImageData(width, height);
  const pixels = maskPixels(shape);
  const rgb = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
  for (let i = 0; i < pixels.length; i += 1) {
    if (!pixels[i]) continue;
    data.data.set([rgb[0], rgb[1], rgb[2], 255], i * 4);
  }
  ctx.putImageData(data, 0, 0);
  byColor.set(color, canvas);
  return canvas;
}

/**
 * Trace a shape's outline as a path in screen coordinates.
 * @param {CanvasRenderingContext2D} ctx
 * @param {import("./viewer.js").Viewer} viewer
 * @param {import("../shapes.js").Shape} shape
 */
function tracePath(ctx, viewer, shape) {
  ctx.beginPath();
  if (shape.type === "point") {
    const [sx, sy] = viewer.toScreen(shape.x, shape.y);
    ctx.moveTo(sx + 6, sy);
    ctx.arc(sx, sy, 6, 0, 2 * Math.PI);
    ctx.moveTo(sx - 10, sy);
    ctx.lineTo(sx + 10, sy);
    ctx.moveTo(sx, sy - 10);
    ctx.lineTo(sx, sy + 10);
    return;
  }
  outline(shape).forEach(([x, y], i) => {
    const [sx, sy] = viewer.toScreen(x, y);
    if (i === 0) ctx.moveTo(sx, sy);
    else ctx.lineTo(sx, sy);
  });
  if (shape.type !== "polyline") ctx.closePath();
}

/**
 * Stroke the current path twice: a dark halo, then the colour.
 * @param {CanvasRenderingContext2D} ctx
 * @param {string} color
 * @param {number} width
 */
function haloStroke(ctx, color, width) {
  ctx.strokeStyle = "rgba(0, 0, 0, 0.75)";
  ctx.lineWidth = width + 2.5;
  ctx.stroke();
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.stroke();
}

/**
 * Draw one shape.
 * @param {CanvasRenderingContext2D} ctx
 * @param {import("./viewer.js").Viewer} viewer
 * @param {import("../shapes.js").Shape} shape
 * @param {object} style
 * @param {string} style.color
 * @param {boolean} [style.selected]
 * @param {boolean} [style.draft] machine draft: dashed
 * @param {boolean} [style.interpolated] a track between keyframes: thinner
 * @param {string} [style.tag] text of the label tag
 */
export function drawShape(
  ctx,
  viewer,
  shape,
  { color, selected = false, draft = false, interpolated = false, tag = "" },
) {
  ctx.save();
  ctx.setLineDash(draft ? [7, 5] : []);
  if (shape.type === "mask") {
    const { scale, x, y } = viewer.view;
    const image = maskImage(shape, color);
    ctx.globalAlpha = selected ? 0.6 : 0.4;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(image, x, y, image.width * scale, image.height * scale);
    ctx.globalAlpha = 1;
  } else {
    tracePath(ctx, viewer, shape);
    if (selected && shape.type !== "point" && shape.type !== "polyline") {
      ctx.fillStyle = `${color}26`;
      ctx.fill();
    }
    haloStroke(ctx, color, selected ? 2.5 : interpolated ? 1.25 : 1.75);
  }
  ctx.setLineDash([]);
  if (tag) drawTag(ctx, viewer, shape, tag, color, draft);
  if (selected) {
    for (const [hx, hy] of handles(shape)) {
      const [sx, sy] = viewer.toScreen(hx, hy);
      ctx.fillStyle = "#0b0f14";
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.fillRect(sx - HANDLE, sy - HANDLE, 2 * HANDLE, 2 * HANDLE);
      ctx.strokeRect(sx - HANDLE, sy - HANDLE, 2 * HANDLE, 2 * HANDLE);
    }
  }
  ctx.restore();
}

/**
 * A small label tag above a shape's top-left corner.
 * @param {CanvasRenderingContext2D} ctx
 * @param {import("./viewer.js").Viewer} viewer
 * @param {import("../shapes.js").Shape} shape
 * @param {string} text
 * @param {string} color
 * @param {boolean} draft
 */
function drawTag(ctx, viewer, shape, text, color, draft) {
  const [x0, y0] = bounds(shape);
  const [sx, sy] = viewer.toScreen(x0, y0);
  ctx.font = "600 11px system-ui, sans-serif";
  const width = ctx.measureText(text).width + 8;
  const top = Math.max(0, sy - 17);
  ctx.fillStyle = draft ? "rgba(11, 15, 20, 0.85)" : color;
  ctx.fillRect(sx, top, width, 15);
  if (draft) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1;
    ctx.strokeRect(sx + 0.5, top + 0.5, width - 1, 14);
  }
  ctx.fillStyle = draft ? color : "#0b0f14";
  ctx.fillText(text, sx + 4, top + 11);
}

/**
 * Draw a polygon being drawn: its vertices and the edge to the pointer.
 * @param {CanvasRenderingContext2D} ctx
 * @param {import("./viewer.js").Viewer} viewer
 * @param {number[][]} points frame px
 * @param {number[] | null} pointer frame px
 * @param {string} color
 */
export function drawOpenPolygon(ctx, viewer, points, pointer, color) {
  if (!points.length) return;
  ctx.save();
  ctx.beginPath();
  const all = pointer ? [...points, pointer] : points;
  all.forEach(([x, y], i) => {
    const [sx, sy] = viewer.toScreen(x, y);
    if (i === 0) ctx.moveTo(sx, sy);
    else ctx.lineTo(sx, sy);
  });
  haloStroke(ctx, color, 1.75);
  for (const [x, y] of points) {
    const [sx, sy] = viewer.toScreen(x, y);
    ctx.fillStyle = color;
    ctx.fillRect(sx - 3, sy - 3, 6, 6);
  }
  ctx.restore();
}

/**
 * The brush outline at the pointer.
 * @param {CanvasRenderingContext2D} ctx
 * @param {import("./viewer.js").Viewer} viewer
 * @param {number[]} at frame px
 * @param {number} radius frame px
 * @param {boolean} erase
 */
export function drawBrush(ctx, viewer, at, radius, erase) {
  const [sx, sy] = viewer.toScreen(at[0], at[1]);
  ctx.save();
  ctx.beginPath();
  ctx.arc(sx, sy, Math.max(radius * viewer.view.scale, 2), 0, 2 * Math.PI);
  ctx.setLineDash(erase ? [4, 3] : []);
  haloStroke(ctx, erase ? "#ff5252" : "#ffffff", 1.25);
  ctx.restore();
}
