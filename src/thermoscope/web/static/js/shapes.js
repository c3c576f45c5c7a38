/**
 * Shape geometry in frame pixels, mirroring the one rasterisation of `thermoscope.core.regions`
 * (docs/recipes.md, "Region geometry") that recipes and `thermoscope.annotations.shapes` use:
 * x is the column, y the row, origin at the frame's top-left corner; a pixel belongs to a filled
 * shape when its centre does (left/top edges in, right/bottom out, even-odd rule for polygons).
 * Shapes are the item's JSON dicts (`{type: "box", x, y, width, height}` ...).
 * @module shapes
 */

import * as rle from "./rle.js";

/**
 * @typedef {{type: "box", x: number, y: number, width: number, height: number}
 *   | {type: "rotated_box", cx: number, cy: number, width: number, height: number, angle_deg: number}
 *   | {type: "polygon" | "polyline", points: number[][]}
 *   | {type: "point", x: number, y: number}
 *   | {type: "mask", size: number[], counts: string}} Shape
 */

/** @type {WeakMap<object, Uint8Array>} decoded masks, by shape dict */
const decoded = new WeakMap();

/**
 * The row-major pixel mask of a mask shape (decoded once per dict).
 * @param {Shape} shape a mask shape
 * @returns {Uint8Array}
 */
export function maskPixels(shape) {
  let pixels = decoded.get(shape);
  if (!pixels) {
    const [height, width] = shape.size;
    const counts = typeof shape.counts === "string" ? rle.fromString(shape.counts) : shape.counts;
    pixels = rle.decode(counts, height, width);
    decoded.set(shape, pixels);
  }
  return pixels;
}

/**
 * A mask shape of a row-major pixel mask, or null when no pixel is set.
 * @param {Uint8Array} pixels
 * @param {number} height
 * @param {number} width
 * @returns {Shape | null}
 */
export function maskShape(pixels, height, width) {
  if (!pixels.some((v) => v)) return null;
  const shape = {
    type: "mask",
    size: [height, width],
    counts: rle.toString(rle.encode(pixels, height, width)),
  };
  decoded.set(shape, pixels.slice());
  return shape;
}

/**
 * The corners of a rotated box (px), starting at the one that is top-left at 0°.
 * @param {Shape} s a rotated box
 * @returns {number[][]}
 */
function rotatedCorners(s) {
  const t = (s.angle_deg * Math.PI) / 180;
  const cos = Math.cos(t);
  const sin = Math.sin(t);
  const hw = s.width / 2;
  const hh = s.height / 2;
  return [
    [-hw, -hh],
    [hw, -hh],
    [hw, hh],
    [-hw, hh],
  ].map(([dx, dy]) => [s.cx + dx * cos - dy * sin, s.cy + dx * sin + dy * cos]);
}

/**
 * The outline of a shape as points (px); a box's four corners; none for masks.
 * @param {Shape} s
 * @returns {number[][]}
 */
export function outline(s) {
  switch (s.type) {
    case "box":
      return [
        [s.x, s.y],
        [s.x + s.width, s.y],
        [s.x + s.width, s.y + s.height],
        [s.x, s.y + s.height],
      ];
    case "rotated_box":
      return rotatedCorners(s);
    case "polygon":
    case "polyline":
      return s.points;
    case "point":
      return [[s.x, s.y]];
    default:
      return [];
  }
}

/**
 * `[x0, y0, x1, y1]` of a shape, px.
 * @param {Shape} s
 * @returns {number[]}
 */
export function bounds(s) {
  if (s.type === "mask") {
    const [height, width] = s.size;
    const pixels = maskPixels(s);
    let x0 = width;
    let y0 = height;
    let x1 = 0;
    let y1 = 0;
    for (let r = 0; r < height; r += 1) {
      for (let c = 0; c < width; c += 1) {
        if (pixels[r * width + c]) {
          x0 = Math.min(x0, c);
          x1 = Math.max(x1, c + 1);
          y0 = Math.min(y0, r);
          y1 = Math.max(y1, r + 1);
        }
      }
    }
    return [x0, y0, x1, y1];
  }
  const pts = outline(s);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/**
 * Pixel index range `[first, end)` of the pixels whose centres lie in `[a, b)` along one axis.
 * @param {number} a
 * @param {number} b
 * @param {number} size
 * @returns {number[]}
 */
function centreRange(a, b, size) {
  return [clamp(Math.ceil(a - 0.5), 0, size), clamp(Math.ceil(b - 0.5), 0, size)];
}

/**
 * Row spans `[row, c0, c1, ...]` (columns `c0 .. c1-1`) of the pixels whose centres lie inside
 * a closed polygon (even-odd rule).
 * @param {number[][]} points
 * @param {number} width
 * @param {number} height
 * @returns {number[]}
 */
function polygonSpans(points, width, height) {
  const ys = points.map((p) => p[1]);
  const [r0, r1] = centreRange(Math.min(...ys), Math.max(...ys), height);
  const out = [];
  const n = points.length;
  for (let r = r0; r < r1; r += 1) {
    const cy = r + 0.5;
    const xs = [];
    for (let i = 0; i < n; i += 1) {
      const [x, y] = points[i];
      const [x2, y2] = points[(i + 1) % n];
      // product first, as core/regions.py: a crossing on a pixel centre comes out exact
      if (y <= cy !== y2 <= cy) xs.push(x + ((cy - y) * (x2 - x)) / (y2 - y));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const [c0, c1] = centreRange(xs[k], xs[k + 1], width);
      if (c1 > c0) out.push(r, c0, c1);
    }
  }
  return out;
}

/**
 * Row spans `[row, c0, c1, ...]` of the 8-connected pixels a 1-px line through `points` touches
 * (Bresenham between the pixels holding the vertices).
 * @param {number[][]} points
 * @param {number} width
 * @param {number} height
 * @returns {number[]}
 */
function lineSpans(points, width, height) {
  const out = [];
  const plot = (c, r) => {
    if (c >= 0 && r >= 0 && c < width && r < height) out.push(r, c, c + 1);
  };
  for (let i = 0; i + 1 < points.length; i += 1) {
    let [c, r] = points[i].map((v) => Math.round(v - 0.5));
    const [c1, r1] = points[i + 1].map((v) => Math.round(v - 0.5));
    const dc = Math.abs(c1 - c);
    const dr = -Math.abs(r1 - r);
    const sc = c < c1 ? 1 : -1;
    const sr = r < r1 ? 1 : -1;
    let err = dc + dr;
    let start = i > 0; // a segment's first pixel is the previous one's last
    for (;;) {
      if (!start) plot(c, r);
      start = false;
      if (c === c1 && r === r1) break;
      const e2 = 2 * err;
      if (e2 >= dr) {
        err += dr;
        c += sc;
      }
      if (e2 <= dc) {
        err += dc;
        r += sr;
      }
    }
  }
  return out;
}

/**
 * Row spans `[row, c0, c1, ...]` of the pixels of a shape on a `width` x `height` frame (the
 * pixels `to_mask` selects; a polyline's pixels by Bresenham, close to OpenCV's line).
 * @param {Shape} s
 * @param {number} width
 * @param {number} height
 * @returns {number[]}
 */
export function spans(s, width, height) {
  switch (s.type) {
    case "box": {
      const [c0, c1] = centreRange(s.x, s.x + s.width, width);
      const [r0, r1] = centreRange(s.y, s.y + s.height, height);
      const out = [];
      if (c1 > c0) for (let r = r0; r < r1; r += 1) out.push(r, c0, c1);
      return out;
    }
    case "rotated_box":
    case "polygon":
      return polygonSpans(outline(s), width, height);
    case "point": {
      if (s.x < 0 || s.y < 0 || s.x > width || s.y > height) return [];
      const c = Math.min(Math.floor(s.x), width - 1);
      return [Math.min(Math.floor(s.y), height - 1), c, c + 1];
    }
    case "polyline":
      return lineSpans(s.points, width, height);
    case "mask": {
      const pixels = maskPixels(s);
      const out = [];
      for (let r = 0; r < height; r += 1) {
        let c = 0;
        while (c < width) {
          if (!pixels[r * width + c]) {
            c += 1;
            continue;
          }
          const start = c;
          while (c < width && pixels[r * width + c]) c += 1;
          out.push(r, start, c);
        }
      }
      return out;
    }
    default:
      return [];
  }
}

/**
 * @typedef {object} Stats
 * @property {number} min °C
 * @property {number} max °C
 * @property {number} mean °C
 * @property {number} pixels finite pixels counted
 */

/**
 * Min / max / mean °C over the finite pixels of row spans (NaN when there is none).
 * @param {Float32Array} celsius row-major frame
 * @param {number} width
 * @param {number[]} rowSpans from `spans`
 * @returns {Stats}
 */
function spanStats(celsius, width, rowSpans) {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let pixels = 0;
  for (let k = 0; k < rowSpans.length; k += 3) {
    const base = rowSpans[k] * width;
    for (let i = base + rowSpans[k + 1], end = base + rowSpans[k + 2]; i < end; i += 1) {
      const v = celsius[i];
      if (!Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      pixels += 1;
    }
  }
  if (!pixels) return { min: NaN, max: NaN, mean: NaN, pixels };
  return { min, max, mean: sum / pixels, pixels };
}

/**
 * Temperatures inside a shape on a frame.
 * @param {Float32Array} celsius
 * @param {number} width
 * @param {number} height
 * @param {Shape} s
 * @returns {Stats}
 */
export function shapeStats(celsius, width, height, s) {
  return spanStats(celsius, width, spans(s, width, height));
}

/**
 * Distance from point p to segment ab, px.
 * @param {number[]} p
 * @param {number[]} a
 * @param {number[]} b
 * @returns {number}
 */
function segmentDistance(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2)) : 0;
  return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
}

/**
 * Whether point (x, y) lies inside a closed outline (even-odd rule).
 * @param {number[][]} pts
 * @param {number} x
 * @param {number} y
 * @returns {boolean}
 */
function insideOutline(pts, x, y) {
  let inside = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i, i += 1) {
    const [xi, yi] = pts[i];
    const [xj, yj] = pts[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * Whether frame point (x, y) hits a shape, within `tolerance` px of its outline.
 * @param {Shape} s
 * @param {number} x
 * @param {number} y
 * @param {number} tolerance px
 * @returns {boolean}
 */
export function hits(s, x, y, tolerance) {
  if (s.type === "mask") {
    const [height, width] = s.size;
    const c = Math.floor(x);
    const r = Math.floor(y);
    return c >= 0 && r >= 0 && c < width && r < height && Boolean(maskPixels(s)[r * width + c]);
  }
  const pts = outline(s);
  if (s.type === "point") return Math.hypot(x - s.x, y - s.y) <= tolerance * 1.5;
  const closed = s.type !== "polyline";
  if (closed && insideOutline(pts, x, y)) return true;
  const last = closed ? pts.length : pts.length - 1;
  for (let i = 0; i < last; i += 1) {
    if (segmentDistance([x, y], pts[i], pts[(i + 1) % pts.length]) <= tolerance) return true;
  }
  return false;
}

/**
 * Clamp v into [lo, hi].
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 * @returns {number}
 */
export function clamp(v, lo, hi) {
  return Math.min(Math.max(v, lo), hi);
}

/**
 * A shape moved by (dx, dy) px, kept inside the frame (masks shift pixel by pixel).
 * @param {Shape} s
 * @param {number} dx
 * @param {number} dy
 * @param {number} width frame width
 * @param {number} height frame height
 * @returns {Shape}
 */
export function translate(s, dx, dy, width, height) {
  const [x0, y0, x1, y1] = bounds(s);
  const mx = clamp(dx, -x0, width - x1);
  const my = clamp(dy, -y0, height - y1);
  switch (s.type) {
    case "box":
    case "point":
      return { ...s, x: s.x + mx, y: s.y + my };
    case "rotated_box":
      return { ...s, cx: s.cx + mx, cy: s.cy + my };
    case "polygon":
    case "polyline":
      return { ...s, points: s.points.map(([x, y]) => [x + mx, y + my]) };
    case "mask": {
      const sx = Math.round(mx);
      const sy = Math.round(my);
      const src = maskPixels(s);
      const out = new Uint8Array(src.length);
      for (let r = 0; r < height; r += 1) {
        for (let c = 0; c < width; c += 1) {
          if (src[r * width + c]) out[(r + sy) * width + c + sx] = 1;
        }
      }
      return maskShape(out, height, width) ?? s;
    }
    default:
      return s;
  }
}

/**
 * The editing handles of a shape: box corners, polygon vertices, the point itself.
 * @param {Shape} s
 * @returns {number[][]}
 */
export function handles(s) {
  return s.type === "box" || s.type === "polygon" || s.type === "polyline" || s.type === "point"
    ? outline(s)
    : [];
}

/**
 * A shape with handle `index` moved to (x, y) (a box keeps the opposite corner).
 * @param {Shape} s
 * @param {number} index
 * @param {number} x
 * @param {number} y
 * @returns {Shape}
 */
export function moveHandle(s, index, x, y) {
  if (s.type === "point") return { ...s, x, y };
  if (s.type === "box") {
    const corners = outline(s);
    const [ox, oy] = corners[(index + 2) % 4];
    return boxFrom(ox, oy, x, y);
  }
  const points = s.points.map((p, i) => (i === index ? [x, y] : p));
  return { ...s, points };
}

/**
 * The box spanned by two corners (any order).
 * @param {number} ax
 * @param {number} ay
 * @param {number} bx
 * @param {number} by
 * @returns {Shape}
 */
export function boxFrom(ax, ay, bx, by) {
  return {
    type: "box",
    x: Math.min(ax, bx),
    y: Math.min(ay, by),
    width: Math.abs(bx - ax),
    height: Math.abs(by - ay),
  };
}

/**
 * Whether a shape is valid for the item (a box with a size, a polygon with area ...).
 * @param {Shape} s
 * @returns {boolean}
 */
export function isValid(s) {
  if (s.type === "box") return s.width > 0 && s.height > 0;
  if (s.type === "polygon") return s.points.length >= 3 && polygonArea(s.points) > 1e-9;
  if (s.type === "polyline") return s.points.length >= 2;
  return true;
}

/**
 * Area of a closed polygon, px² (shoelace).
 * @param {number[][]} pts
 * @returns {number}
 */
function polygonArea(pts) {
  let twice = 0;
  for (let i = 0; i < pts.length; i += 1) {
    const [x1, y1] = pts[i];
    const [x2, y2] = pts[(i + 1) % pts.length];
    twice += x1 * y2 - x2 * y1;
  }
  return Math.abs(twice) / 2;
}
