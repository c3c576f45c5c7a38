/**
 * The spot meter: a crosshair with the °C at the cursor, and fixed spots a user places by
 * clicking, each with its °C read from the frame shown (recomputed or not).
 * @module measure/spots
 */

import { celsiusText, fill, h } from "../dom.js";

/** @typedef {{col: number, row: number}} Spot a pixel, 0-based column and row */

/**
 * Draw the fixed spots and the cursor's crosshair over the image (screen coordinates).
 * @param {CanvasRenderingContext2D} c
 * @param {import("../annotate/viewer.js").Viewer} viewer
 * @param {Spot[]} spots
 * @param {Spot | null} cursor
 */
export function drawSpots(c, viewer, spots, cursor) {
  const cross = (/** @type {Spot} */ s, /** @type {string} */ text, /** @type {number} */ arm) => {
    const [x, y] = viewer.toScreen(s.col + 0.5, s.row + 0.5);
    c.lineWidth = 3;
    c.strokeStyle = "rgba(0, 0, 0, 0.7)";
    c.beginPath();
    c.moveTo(x - arm, y);
    c.lineTo(x + arm, y);
    c.moveTo(x, y - arm);
    c.lineTo(x, y + arm);
    c.stroke();
    c.lineWidth = 1;
    c.strokeStyle = "#fff";
    c.stroke();
    if (text) {
      c.font = "12px sans-serif";
      c.fillStyle = "#fff";
      c.strokeStyle = "rgba(0, 0, 0, 0.8)";
      c.lineWidth = 3;
      c.strokeText(text, x + arm + 3, y - 3);
      c.fillText(text, x + arm + 3, y - 3);
    }
  };
  spots.forEach((s, i) => cross(s, `S${i + 1}`, 7));
  if (cursor) cross(cursor, "", 12);
}

/**
 * The list of fixed spots with their °C and a remove button each.
 * @param {HTMLElement} host
 * @param {Spot[]} spots
 * @param {(spot: Spot) => number} celsiusAt
 * @param {(index: number) => void} remove
 */
export function renderSpotList(host, spots, celsiusAt, remove) {
  fill(
    host,
    spots.length
      ? h(
          "ol",
          { class: "spot-list" },
          spots.map((s, i) =>
            h(
              "li",
              { dataset: { col: String(s.col), row: String(s.row) } },
              h("span", { class: "spot-name" }, `S${i + 1}`),
              h("span", { class: "muted" }, ` x ${s.col} · y ${s.row} `),
              h("span", { class: "spot-temp" }, celsiusText(celsiusAt(s))),
              h(
                "button",
                {
                  type: "button",
                  class: "ghost small",
                  title: "Remove this spot",
                  onclick: () => remove(i),
                },
                "×",
              ),
            ),
          ),
        )
      : h("p", { class: "muted small" }, "Click the image to place a spot."),
  );
}
