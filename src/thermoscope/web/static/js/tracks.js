/**
 * Tracks across the frames of a sequence, as `thermoscope.annotations.tracks`: keyframes
 * `{frame, shape, outside}` and interpolation between them (boxes, rotated boxes and points
 * linearly; polygons and polylines aligned by arc length; masks held).
 * @module tracks
 */

/** @typedef {import("./shapes.js").Shape} Shape */
/** @typedef {{frame: number, shape: Shape, outside: boolean}} Keyframe */

const lerp = (u, v, t) => u + (v - u) * t;
const mod1 = (v) => ((v % 1) + 1) % 1;

/**
 * The (interpolated) shape of a track on `frame`, or null where the object is not visible.
 * @param {{keyframes: Keyframe[]}} track keyframes sorted by frame
 * @param {number} frame
 * @returns {Shape | null}
 */
export function shapeAt(track, frame) {
  const keys = track.keyframes;
  if (!keys.length || frame < keys[0].frame) return null;
  let i = 0;
  while (i + 1 < keys.length && keys[i + 1].frame <= frame) i += 1;
  const key = keys[i];
  if (key.outside) return null;
  if (key.frame === frame || i + 1 === keys.length) return key.shape;
  const next = keys[i + 1];
  if (next.outside) return key.shape;
  return interpolate(key.shape, next.shape, (frame - key.frame) / (next.frame - key.frame));
}

/**
 * The keyframes with `key` put in (replacing one on the same frame), sorted by frame.
 * @param {Keyframe[]} keys
 * @param {Keyframe} key
 * @returns {Keyframe[]}
 */
export function withKeyframe(keys, key) {
  return [...keys.filter((k) => k.frame !== key.frame), key].sort((a, b) => a.frame - b.frame);
}

/**
 * The shape a fraction `t` (0..1) of the way from `a` to `b` (same type).
 * @param {Shape} a
 * @param {Shape} b
 * @param {number} t
 * @returns {Shape}
 */
export function interpolate(a, b, t) {
  if (t <= 0) return a;
  if (t >= 1) return b;
  switch (a.type) {
    case "box":
      return {
        type: "box",
        x: lerp(a.x, b.x, t),
        y: lerp(a.y, b.y, t),
        width: lerp(a.width, b.width, t),
        height: lerp(a.height, b.height, t),
      };
    case "rotated_box": {
      const turn = ((((b.angle_deg - a.angle_deg + 180) % 360) + 360) % 360) - 180;
      return {
        type: "rotated_box",
        cx: lerp(a.cx, b.cx, t),
        cy: lerp(a.cy, b.cy, t),
        width: lerp(a.width, b.width, t),
        height: lerp(a.height, b.height, t),
        angle_deg: a.angle_deg + t * turn,
      };
    }
    case "point":
      return { type: "point", x: lerp(a.x, b.x, t), y: lerp(a.y, b.y, t) };
    case "polygon":
    case "polyline": {
      const [pa, pb] = resamplePair(a.points, b.points, a.type === "polygon");
      const points = pa.map((p, i) => [lerp(p[0], pb[i][0], t), lerp(p[1], pb[i][1], t)]);
      return degenerate(points, a.type === "polygon")
        ? t < 0.5
          ? a
          : b
        : { type: a.type, points };
    }
    default:
      return a;
  }
}

/**
 * Whether an interpolated outline has no area (polygon) or no length (polyline).
 * @param {number[][]} pts
 * @param {boolean} closed
 * @returns {boolean}
 */
function degenerate(pts, closed) {
  const [x0, y0] = pts[0];
  let size = 0;
  let cross = 0;
  for (const [x, y] of pts) {
    size = Math.max(size, Math.hypot(x - x0, y - y0));
    if (closed) {
      for (const [u, v] of pts)
        cross = Math.max(cross, Math.abs((x - x0) * (v - y0) - (y - y0) * (u - x0)));
    }
  }
  return size === 0 || (closed && cross <= 1e-12 * size * size);
}

/**
 * Cumulative lengths along an outline (closing edge included when closed) and each vertex's
 * position in 0..1 ([0, 1) when closed).
 * @param {number[][]} pts
 * @param {boolean} closed
 * @returns {{params: number[], cum: number[], path: number[][]}}
 */
function params(pts, closed) {
  const path = closed ? [...pts, pts[0]] : pts;
  const cum = [0];
  for (let i = 1; i < path.length; i += 1) {
    cum.push(cum[i - 1] + Math.hypot(path[i][0] - path[i - 1][0], path[i][1] - path[i - 1][1]));
  }
  const total = cum[cum.length - 1];
  const all = cum.map((c) => c / total);
  return { params: closed ? all.slice(0, -1) : all, cum, path };
}

/**
 * Points at normalised arc-length positions `s` along an outline.
 * @param {number[][]} pts
 * @param {boolean} closed
 * @param {number[]} s
 * @returns {number[][]}
 */
function sample(pts, closed, s) {
  const { cum, path } = params(pts, closed);
  const total = cum[cum.length - 1];
  return s.map((pos) => {
    const target = pos * total;
    let seg = 0;
    while (seg + 1 < cum.length && cum[seg + 1] <= target) seg += 1;
    seg = Math.min(seg, path.length - 2);
    const length = cum[seg + 1] - cum[seg];
    const frac = length > 0 ? (target - cum[seg]) / length : 0;
    const [x0, y0] = path[seg];
    const [x1, y1] = path[seg + 1];
    return [x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)];
  });
}

/**
 * `n` positions evenly over 0..1, with or without the end.
 * @param {number} n
 * @param {boolean} endpoint
 * @returns {number[]}
 */
function linspace(n, endpoint) {
  const step = 1 / (endpoint ? n - 1 : n);
  return Array.from({ length: n }, (_, i) => (endpoint && i === n - 1 ? 1 : i * step));
}

/**
 * Two outlines resampled to corresponding points: `b`'s start vertex and direction are chosen
 * to best match `a`, both are sampled at the union of both vertex sets.
 * @param {number[][]} a
 * @param {number[][]} b
 * @param {boolean} closed
 * @returns {number[][][]}
 */
function resamplePair(a, b, closed) {
  const m = b.length;
  const probe = linspace(Math.min(Math.max(a.length, m, 16) * 2, 64), !closed);
  const sa = sample(a, closed, probe);
  const starts = closed ? params(b, closed).params : [0];
  const cost = (grid) =>
    sample(b, closed, grid).reduce(
      (acc, [x, y], i) => acc + (x - sa[i][0]) ** 2 + (y - sa[i][1]) ** 2,
      0,
    );
  const costs = [1, -1].map((dir) =>
    starts.map((s0) => cost(probe.map((p) => (closed ? mod1(s0 + dir * p) : dir > 0 ? p : 1 - p)))),
  );
  const best = costs.map((c) => Math.min(...c));
  const direction = best[1] < best[0] ? 1 : 0;
  const k = costs[direction].indexOf(best[direction]);
  const roll = (pts, shift) =>
    pts.map((_, i) => pts[(((i + shift) % pts.length) + pts.length) % pts.length]);
  let pb;
  if (direction === 0) pb = roll(b, k);
  else pb = closed ? roll([...b].reverse(), m - 1 - k) : [...b].reverse();
  const union = [...new Set([...params(a, closed).params, ...params(pb, closed).params])].sort(
    (x, y) => x - y,
  );
  const s = union.filter((v, i) => i === 0 || v - union[i - 1] > 1e-12);
  return [sample(a, closed, s), sample(pb, closed, s)];
}
