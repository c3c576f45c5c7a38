/**
 * The thermogram canvas: paints a frame's °C with a palette and a display range (low..high),
 * zooms and pans, and maps between screen and frame pixels. A model's heat map, when set, is
 * laid over the image; overlays are drawn by a callback after both, in screen coordinates.
 * @module annotate/viewer
 */

import { palette } from "../palettes.js";
import { autoRange, paint } from "../thermal.js";

/** Zoom limits, screen px per frame px. */
const MIN_SCALE = 0.1;
const MAX_SCALE = 64;

export class Viewer {
  /**
   * @param {HTMLCanvasElement} canvas inside the element whose size it takes
   * @param {(ctx: CanvasRenderingContext2D, viewer: Viewer) => void} drawOverlay
   */
  constructor(canvas, drawOverlay) {
    this.canvas = canvas;
    this.ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    this.drawOverlay = drawOverlay;
    /** @type {import("../thermal.js").Frame | null} */
    this.frame = null;
    this.paletteName = "iron";
    this.low = 0;
    this.high = 1;
    /** screen px per frame px, and the screen position of the frame's origin (CSS px) */
    this.view = { scale: 1, x: 0, y: 0 };
    this.image = document.createElement("canvas");
    /** @type {ImageData | null} */
    this.imageData = null;
    /** @type {Uint32Array | null} */
    this.pixels = null;
    /** milliseconds the last paint of the frame took */
    this.paintMs = 0;
    this.fitted = false;
    /** @type {HTMLCanvasElement | null} the model's heat map image, drawn over the frame */
    this.heatmap = null;
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(/** @type {Element} */ (canvas.parentElement));
  }

  /** Stop watching the canvas size. */
  dispose() {
    this.resizeObserver.disconnect();
  }

  /** Match the canvas backing store to its box and the device pixel ratio, then redraw. */
  resize() {
    const box = /** @type {Element} */ (this.canvas.parentElement).getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(box.width * dpr));
    this.canvas.height = Math.max(1, Math.round(box.height * dpr));
    this.canvas.style.width = `${box.width}px`;
    this.canvas.style.height = `${box.height}px`;
    if (this.frame && !this.fitted) this.fit();
    this.draw();
  }

  /**
   * Show a frame (same size as the previous one keeps the zoom).
   * @param {import("../thermal.js").Frame} frame
   */
  setFrame(frame) {
    const sizeChanged =
      !this.frame || this.frame.width !== frame.width || this.frame.height !== frame.height;
    this.frame = frame;
    if (sizeChanged) {
      this.image.width = frame.width;
      this.image.height = frame.height;
      const ctx = /** @type {CanvasRenderingContext2D} */ (this.image.getContext("2d"));
      this.imageData = ctx.createImageData(frame.width, frame.height);
      this.pixels = new Uint32Array(this.imageData.data.buffer);
      this.fit();
    }
    this.repaint();
  }

  /**
   * Set the display range, °C.
   * @param {number} low
   * @param {number} high
   */
  setRange(low, high) {
    if (!(high > low)) return;
    this.low = low;
    this.high = high;
    Object.assign(this.canvas.dataset, { low: String(low), high: String(high) });
    this.repaint();
  }

  /** Set the range to the frame's 1st..99th percentiles. */
  autoRange() {
    const range = this.frame && autoRange(this.frame);
    if (range) this.setRange(range[0], range[1]);
  }

  /** @param {string} name */
  setPalette(name) {
    this.paletteName = name;
    this.repaint();
  }

  /**
   * Lay a heat map image (the frame's size) over the frame, or remove it (null).
   * @param {HTMLCanvasElement | null} image
   */
  setHeatmap(image) {
    this.heatmap = image;
    this.canvas.dataset.heatmap = image ? "on" : "off";
    this.draw();
  }

  /** Paint the frame into the image buffer (one pass; timed in `paintMs`), then redraw. */
  repaint() {
    if (!this.frame || !this.imageData || !this.pixels) return;
    const t0 = performance.now();
    paint(this.frame.celsius, this.pixels, palette(this.paletteName), this.low, this.high);
    /** @type {CanvasRenderingContext2D} */ (this.image.getContext("2d")).putImageData(
      this.imageData,
      0,
      0,
    );
    this.paintMs = performance.now() - t0;
    this.draw();
  }

  /** Fit the frame into the canvas, centred. */
  fit() {
    if (!this.frame) return;
    const { width, height } = /** @type {Element} */ (
      this.canvas.parentElement
    ).getBoundingClientRect();
    if (!width || !height) return;
    const scale = Math.min(width / this.frame.width, height / this.frame.height) * 0.96;
    this.setView(
      scale,
      (width - this.frame.width * scale) / 2,
      (height - this.frame.height * scale) / 2,
    );
    this.fitted = true;
  }

  /**
   * Set zoom and pan (CSS px) and redraw.
   * @param {number} scale
   * @param {number} x
   * @param {number} y
   */
  setView(scale, x, y) {
    this.view = { scale, x, y };
    Object.assign(this.canvas.dataset, { scale: String(scale), panX: String(x), panY: String(y) });
    this.draw();
  }

  /**
   * Zoom by `factor` keeping the frame point under screen point (sx, sy) in place.
   * @param {number} factor
   * @param {number} sx
   * @param {number} sy
   */
  zoomAt(factor, sx, sy) {
    const { scale, x, y } = this.view;
    const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale * factor));
    const k = next / scale;
    this.setView(next, sx - (sx - x) * k, sy - (sy - y) * k);
  }

  /**
   * Move the view by (dx, dy) CSS px.
   * @param {number} dx
   * @param {number} dy
   */
  panBy(dx, dy) {
    this.setView(this.view.scale, this.view.x + dx, this.view.y + dy);
  }

  /**
   * The frame position (px, fractional) of a pointer event.
   * @param {MouseEvent} event
   * @returns {number[]}
   */
  toFrame(event) {
    const rect = this.canvas.getBoundingClientRect();
    const { scale, x, y } = this.view;
    return [(event.clientX - rect.left - x) / scale, (event.clientY - rect.top - y) / scale];
  }

  /**
   * Screen position (CSS px in the canvas) of a frame position.
   * @param {number} fx
   * @param {number} fy
   * @returns {number[]}
   */
  toScreen(fx, fy) {
    const { scale, x, y } = this.view;
    return [x + fx * scale, y + fy * scale];
  }

  /**
   * The pixel under a frame position and its °C (exact value of the float array), or null
   * outside the frame.
   * @param {number} fx
   * @param {number} fy
   * @returns {{col: number, row: number, celsius: number} | null}
   */
  probe(fx, fy) {
    if (!this.frame) return null;
    const col = Math.floor(fx);
    const row = Math.floor(fy);
    if (col < 0 || row < 0 || col >= this.frame.width || row >= this.frame.height) return null;
    return { col, row, celsius: this.frame.celsius[row * this.frame.width + col] };
  }

  /** Redraw the image and the overlay. */
  draw() {
    const { ctx, canvas } = this;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!this.frame) return;
    const { scale, x, y } = this.view;
    ctx.imageSmoothingEnabled = false;
    ctx.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * x, dpr * y);
    ctx.drawImage(this.image, 0, 0);
    if (this.heatmap) ctx.drawImage(this.heatmap, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.drawOverlay(ctx, this);
  }
}
