/**
 * The thermogram canvas of the measure view: the annotate view's viewer, painted with the
 * isotherm and saturation marks.
 * @module measure/viewer
 */

import { Viewer } from "../annotate/viewer.js";
import { palette } from "../palettes.js";
import { paintMarked } from "./paint.js";

export class MeasureViewer extends Viewer {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {(ctx: CanvasRenderingContext2D, viewer: Viewer) => void} drawOverlay
   */
  constructor(canvas, drawOverlay) {
    super(canvas, drawOverlay);
    /** @type {import("./paint.js").Marks} */
    this.marks = { isotherm: null, below: null, above: null };
  }

  /** @param {import("./paint.js").Marks} marks */
  setMarks(marks) {
    this.marks = marks;
    this.repaint();
  }

  /** Paint the frame with the palette and the marks, then redraw. */
  repaint() {
    if (!this.frame || !this.imageData || !this.pixels || !this.marks) return;
    const t0 = performance.now();
    const pal = palette(this.paletteName);
    paintMarked(this.frame.celsius, this.pixels, pal, this.low, this.high, this.marks);
    /** @type {CanvasRenderingContext2D} */ (this.image.getContext("2d")).putImageData(
      this.imageData,
      0,
      0,
    );
    this.paintMs = performance.now() - t0;
    this.draw();
  }
}
