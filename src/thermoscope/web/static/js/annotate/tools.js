/**
 * Pointer work on the thermogram: pan (middle button, or Space / empty space + drag), zoom
 * (wheel), level and span (right button drag), select / move / reshape, and the drawing tools
 * (box, polygon, brush mask, point).
 * @module annotate/tools
 */

import {
  boxFrom,
  clamp,
  handles,
  hits,
  isValid,
  maskPixels,
  maskShape,
  moveHandle,
  translate,
} from "../shapes.js";
import { drawBrush, drawOpenPolygon, drawShape } from "./overlay.js";

/** Pointer tolerance for hitting outlines and handles, screen px. */
const TOLERANCE = 6;

/**
 * What the interaction needs from the annotate view.
 * @typedef {object} Host
 * @property {() => string} tool "select", "box", "polygon", "brush" or "point"
 * @property {() => import("./records.js").Visible[]} visible records on the current frame
 * @property {() => string | null} selected id of the selected record
 * @property {(id: string | null) => void} select
 * @property {(shape: import("../shapes.js").Shape) => void} create a new record of the current label
 * @property {(id: string, shape: import("../shapes.js").Shape | null) => void} reshape null removes
 * @property {() => number} brushRadius px
 * @property {() => string} color of the current label
 * @property {(probe: {col: number, row: number, celsius: number} | null) => void} cursor
 * @property {() => void} rangeChanged the display range was dragged
 * @property {() => void} togglePlay Space tapped without dragging
 */

/** Round to 1/100 px (what a person can place; keeps the JSON short). */
const r2 = (v) => Math.round(v * 100) / 100;

export class Interaction {
  /**
   * @param {import("./viewer.js").Viewer} viewer
   * @param {Host} host
   */
  constructor(viewer, host) {
    this.viewer = viewer;
    this.host = host;
    /** @type {any} the drag under way */
    this.drag = null;
    /** @type {number[][]} vertices of the polygon being drawn */
    this.polygon = [];
    /** @type {number[] | null} last pointer position, frame px */
    this.pointer = null;
    /** @type {{id: string, shape: import("../shapes.js").Shape} | null} a shape being moved */
    this.preview = null;
    this.space = { down: false, used: false };
    const canvas = viewer.canvas;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", () => this.cancelDrag());
    canvas.addEventListener("pointerleave", () => {
      this.pointer = null;
      host.cursor(null);
      viewer.draw();
    });
    canvas.addEventListener("dblclick", () => this.finishPolygon());
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
  }

  /** @returns {number[]} width and height of the frame */
  size() {
    const f = /** @type {import("../thermal.js").Frame} */ (this.viewer.frame);
    return [f.width, f.height];
  }

  /**
   * A frame position clamped into the frame.
   * @param {number[]} p
   * @returns {number[]}
   */
  inside([x, y]) {
    const [w, h] = this.size();
    return [clamp(x, 0, w), clamp(y, 0, h)];
  }

  /** @param {WheelEvent} e */
  wheel(e) {
    e.preventDefault();
    const rect = this.viewer.canvas.getBoundingClientRect();
    this.viewer.zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - rect.left, e.clientY - rect.top);
  }

  /**
   * The handle of the selected shape under a frame position, or -1.
   * @param {number[]} p
   * @returns {{id: string, shape: any, index: number} | null}
   */
  handleAt([x, y]) {
    const id = this.host.selected();
    const v = this.host.visible().find((r) => r.record.id === id);
    if (!v) return null;
    const tol = TOLERANCE / this.viewer.view.scale;
    const index = handles(v.shape).findIndex(
      ([hx, hy]) => Math.abs(hx - x) <= tol && Math.abs(hy - y) <= tol,
    );
    return index < 0 ? null : { id: v.record.id, shape: v.shape, index };
  }

  /**
   * The topmost record whose shape is under a frame position (the selected one first).
   * @param {number[]} p
   * @returns {import("./records.js").Visible | undefined}
   */
  recordAt([x, y]) {
    const tol = TOLERANCE / this.viewer.view.scale;
    const all = [...this.host.visible()].reverse();
    const id = this.host.selected();
    all.sort((a, b) => Number(b.record.id === id) - Number(a.record.id === id));
    return all.find((v) => hits(v.shape, x, y, tol));
  }

  /** @param {PointerEvent} e */
  down(e) {
    if (!this.viewer.frame) return;
    this.viewer.canvas.setPointerCapture(e.pointerId);
    const p = this.viewer.toFrame(e);
    const start = { sx: e.clientX, sy: e.clientY, p };
    if (e.button === 1 || (e.button === 0 && this.space.down)) {
      this.space.used = this.space.down;
      this.drag = { type: "pan", ...start };
      return;
    }
    if (e.button === 2) {
      this.drag = { type: "level", ...start, low: this.viewer.low, high: this.viewer.high };
      return;
    }
    if (e.button !== 0) return;
    const tool = this.host.tool();
    if (tool === "select") this.startSelect(p, start);
    else if (tool === "box") this.drag = { type: "box", ...start, p: this.inside(p) };
    else if (tool === "point") this.createPoint(p);
    else if (tool === "polygon") this.addVertex(p);
    else if (tool === "brush") this.startBrush(p, e.shiftKey, start);
  }

  /**
   * Select tool: grab a handle, grab a shape, or pan the empty space.
   * @param {number[]} p
   * @param {object} start
   */
  startSelect(p, start) {
    const handle = this.handleAt(p);
    if (handle) {
      this.drag = { type: "handle", ...start, ...handle };
      return;
    }
    const hit = this.recordAt(p);
    if (hit) {
      this.host.select(hit.record.id);
      this.drag = { type: "move", ...start, id: hit.record.id, shape: hit.shape };
    } else {
      this.host.select(null);
      this.drag = { type: "pan", ...start };
    }
  }

  /** @param {number[]} p */
  createPoint(p) {
    const [w, h] = this.size();
    if (p[0] < 0 || p[1] < 0 || p[0] >= w || p[1] >= h) return;
    this.host.create({ type: "point", x: Math.floor(p[0]) + 0.5, y: Math.floor(p[1]) + 0.5 });
  }

  /** @param {number[]} p */
  addVertex(p) {
    const q = this.inside(p).map(r2);
    const first = this.polygon[0];
    const tol = TOLERANCE / this.viewer.view.scale;
    if (this.polygon.length >= 3 && Math.hypot(q[0] - first[0], q[1] - first[1]) <= tol) {
      this.finishPolygon();
      return;
    }
    const last = this.polygon[this.polygon.length - 1];
    if (!last || last[0] !== q[0] || last[1] !== q[1]) this.polygon.push(q);
    this.viewer.draw();
  }

  /** Close the polygon being drawn (needs 3 vertices and some area). */
  finishPolygon() {
    if (this.host.tool() !== "polygon" || this.polygon.length < 3) return;
    const shape = { type: "polygon", points: this.polygon };
    this.polygon = [];
    if (isValid(shape)) this.host.create(shape);
    this.viewer.draw();
  }

  /**
   * Start a brush stroke: on the selected mask annotation, or a new mask.
   * @param {number[]} p
   * @param {boolean} erase
   * @param {object} start
   */
  startBrush(p, erase, start) {
    const [w, h] = this.size();
    const id = this.host.selected();
    const target = this.host
      .visible()
      .find((v) => v.record.id === id && v.kind === "annotation" && v.shape.type === "mask");
    const pixels = target ? maskPixels(target.shape).slice() : new Uint8Array(w * h);
    if (erase && !target) return;
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    const image = ctx.createImageData(w, h);
    const color = this.host.color();
    const rgba = [...[1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16)), 255];
    for (let i = 0; i < pixels.length; i += 1) if (pixels[i]) image.data.set(rgba, i * 4);
    this.drag = {
      type: "brush",
      ...start,
      id: target?.record.id ?? null,
      pixels,
      erase,
      canvas,
      ctx,
      image,
      rgba,
      last: p,
    };
    this.stamp(p, p);
  }

  /**
   * Paint (or erase) the brush disc along a segment: every pixel whose centre lies within the
   * radius of the segment.
   * @param {number[]} a frame px
   * @param {number[]} b frame px
   */
  stamp(a, b) {
    const d = this.drag;
    const [w, h] = this.size();
    const radius = this.host.brushRadius();
    const c0 = clamp(Math.floor(Math.min(a[0], b[0]) - radius), 0, w);
    const c1 = clamp(Math.ceil(Math.max(a[0], b[0]) + radius), 0, w);
    const r0 = clamp(Math.floor(Math.min(a[1], b[1]) - radius), 0, h);
    const r1 = clamp(Math.ceil(Math.max(a[1], b[1]) + radius), 0, h);
    const dx = b[0] - a[0];
    const dy = b[1] - a[1];
    const len2 = dx * dx + dy * dy;
    const r2sq = radius * radius;
    const value = d.erase ? 0 : 1;
    const rgba = d.erase ? [0, 0, 0, 0] : d.rgba;
    for (let r = r0; r < r1; r += 1) {
      for (let c = c0; c < c1; c += 1) {
        const px = c + 0.5 - a[0];
        const py = r + 0.5 - a[1];
        const t = len2 ? clamp((px * dx + py * dy) / len2, 0, 1) : 0;
        const ex = px - t * dx;
        const ey = py - t * dy;
        if (ex * ex + ey * ey > r2sq) continue;
        d.pixels[r * w + c] = value;
        d.image.data.set(rgba, (r * w + c) * 4);
      }
    }
    if (c1 > c0 && r1 > r0) d.ctx.putImageData(d.image, 0, 0, c0, r0, c1 - c0, r1 - r0);
  }

  /** @param {PointerEvent} e */
  move(e) {
    if (!this.viewer.frame) return;
    const p = this.viewer.toFrame(e);
    this.pointer = p;
    this.host.cursor(this.viewer.probe(p[0], p[1]));
    const d = this.drag;
    if (!d) {
      if (this.host.tool() !== "select") this.viewer.draw();
      return;
    }
    if (d.type === "pan") {
      this.viewer.panBy(e.clientX - d.sx, e.clientY - d.sy);
      d.sx = e.clientX;
      d.sy = e.clientY;
      return;
    }
    if (d.type === "level") {
      const span = (d.high - d.low) * Math.exp((e.clientX - d.sx) * 0.005);
      const centre = (d.low + d.high) / 2 - (e.clientY - d.sy) * (d.high - d.low) * 0.003;
      this.viewer.setRange(centre - span / 2, centre + span / 2);
      this.host.rangeChanged();
      return;
    }
    const [w, h] = this.size();
    if (d.type === "move") {
      this.preview = { id: d.id, shape: translate(d.shape, p[0] - d.p[0], p[1] - d.p[1], w, h) };
    } else if (d.type === "handle") {
      const [x, y] = this.inside(p).map(r2);
      this.preview = { id: d.id, shape: moveHandle(d.shape, d.index, x, y) };
    } else if (d.type === "box") {
      const [x, y] = this.inside(p);
      d.box = boxFrom(Math.round(d.p[0]), Math.round(d.p[1]), Math.round(x), Math.round(y));
    } else if (d.type === "brush") {
      this.stamp(d.last, p);
      d.last = p;
    }
    this.viewer.draw();
  }

  /** @param {PointerEvent} e */
  up(e) {
    const d = this.drag;
    this.drag = null;
    if (this.viewer.canvas.hasPointerCapture(e.pointerId))
      this.viewer.canvas.releasePointerCapture(e.pointerId);
    if (!d) return;
    const preview = this.preview;
    this.preview = null;
    if ((d.type === "move" || d.type === "handle") && preview) {
      const shape = preview.shape.type === "box" ? snapBox(preview.shape) : preview.shape;
      if (isValid(shape)) this.host.reshape(d.id, shape);
    } else if (d.type === "box" && d.box && isValid(d.box)) {
      this.host.create(d.box);
    } else if (d.type === "brush") {
      const [w, h] = this.size();
      const shape = maskShape(d.pixels, h, w);
      if (d.id) this.host.reshape(d.id, shape);
      else if (shape) this.host.create(shape);
    }
    this.viewer.draw();
  }

  /** Drop the drag under way (the record keeps its shape). */
  cancelDrag() {
    this.drag = null;
    this.preview = null;
    this.viewer.draw();
  }

  /**
   * Keys while drawing: Enter closes a polygon, Backspace drops its last vertex, Escape drops
   * it. Space (held) pans; a tap without dragging toggles playback.
   * @param {KeyboardEvent} e
   * @returns {boolean} whether the key was used
   */
  keydown(e) {
    if (e.key === " ") {
      if (!e.repeat) this.space = { down: true, used: false };
      this.viewer.canvas.classList.add("panning");
      return true;
    }
    if (!this.polygon.length) return false;
    if (e.key === "Enter") this.finishPolygon();
    else if (e.key === "Backspace") this.polygon.pop();
    else if (e.key === "Escape") this.polygon = [];
    else return false;
    this.viewer.draw();
    return true;
  }

  /**
   * @param {KeyboardEvent} e
   * @returns {boolean} whether the key was used
   */
  keyup(e) {
    if (e.key !== " ") return false;
    if (this.space.down && !this.space.used) this.host.togglePlay();
    this.space = { down: false, used: false };
    this.viewer.canvas.classList.remove("panning");
    return true;
  }

  /** Forget a polygon in progress (tool or frame changed). */
  reset() {
    this.polygon = [];
    this.cancelDrag();
  }

  /**
   * Draw what is in progress: the shape being moved, the box or polygon being drawn, the
   * brush stroke and outline.
   * @param {CanvasRenderingContext2D} ctx
   */
  drawTransient(ctx) {
    const color = this.host.color();
    const d = this.drag;
    if (d?.type === "box" && d.box) drawShape(ctx, this.viewer, d.box, { color });
    if (d?.type === "brush") {
      const { scale, x, y } = this.viewer.view;
      ctx.save();
      ctx.globalAlpha = 0.55;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(d.canvas, x, y, d.canvas.width * scale, d.canvas.height * scale);
      ctx.restore();
    }
    if (this.host.tool() === "polygon")
      drawOpenPolygon(ctx, this.viewer, this.polygon, this.pointer, color);
    if (this.host.tool() === "brush" && this.pointer)
      drawBrush(ctx, this.viewer, this.pointer, this.host.brushRadius(), Boolean(d?.erase));
  }

  /**
   * The id hidden while the stroke or move in progress shows its own picture.
   * @returns {string | null}
   */
  hiddenId() {
    if (this.drag?.type === "brush") return this.drag.id;
    return null;
  }
}

/**
 * A box with its edges on pixel edges (what it covers is then unambiguous).
 * @param {any} box
 * @returns {any}
 */
function snapBox(box) {
  const x0 = Math.round(box.x);
  const y0 = Math.round(box.y);
  return {
    ...box,
    x: x0,
    y: y0,
    width: Math.round(box.x + box.width) - x0,
    height: Math.round(box.y + box.height) - y0,
  };
}
