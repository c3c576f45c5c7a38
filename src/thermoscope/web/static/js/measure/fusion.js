/**
 * The visual + thermal toggle of the measure view. For a frame whose file carries a visual photo
 * (`GET /frames/{fid}/visual`), it switches the stage between the thermogram (the canvas, with
 * its spot meter) and the server's fused views of the same frame (`GET /frames/{fid}/fused.png`):
 * the photo's edges over the palette (MSX-style), a blend of the two, or the thermogram inside
 * the camera's picture-in-picture box. Frames without a photo get no toggle.
 * @module measure/fusion
 */

import * as api from "../api.js";
import { fill, h } from "../dom.js";

/** The views offered, in order: `thermal` is the canvas, the others the server's modes. */
export const FUSION_VIEWS = [
  ["thermal", "Thermal"],
  ["edges", "Edges over thermal (MSX)"],
  ["blend", "Blend"],
  ["pip", "Picture in picture"],
];

/**
 * The URL of a fused view (below the API prefix).
 * @param {string} fid
 * @param {number} index 0-based frame of the sequence
 * @param {string} mode `edges`, `blend` or `pip`
 * @param {string} palette
 * @returns {string}
 */
export function fusedUrl(fid, index, mode, palette) {
  const path = `/frames/${encodeURIComponent(fid)}/fused.png`;
  return api.href(path + api.query({ frame: index, mode, palette }));
}

/**
 * Fill `host` with the toggle when the frame's file carries a photo (else leave it empty and
 * hidden). `canvasHost` and `image` share the stage: one of them is shown at a time.
 * @param {HTMLElement} host the sidebar panel
 * @param {{fid: string, index: number, canvasHost: HTMLElement, image: HTMLImageElement,
 *   palette: () => string}} stage
 * @returns {Promise<{refresh: () => void}>} `refresh` redraws the fused view (palette changed)
 */
export async function fusionToggle(host, stage) {
  const { fid, index, canvasHost, image } = stage;
  const about = await api.get(`/frames/${encodeURIComponent(fid)}/visual?frame=${index}`);
  const offered = FUSION_VIEWS.filter(([v]) => v === "thermal" || about.modes.includes(v));
  host.hidden = offered.length < 2;
  image.hidden = true;
  if (host.hidden) return { refresh: () => {} };
  const select = /** @type {HTMLSelectElement} */ (
    h(
      "select",
      { name: "fusion", onchange: () => show() },
      offered.map(([value, text]) => h("option", { value }, text)),
    )
  );
  function show() {
    const mode = select.value;
    const fused = mode !== "thermal";
    canvasHost.hidden = fused;
    image.hidden = !fused;
    image.dataset.mode = mode;
    if (fused) {
      image.alt = `${select.selectedOptions[0].textContent} view of the frame`;
      image.src = fusedUrl(fid, index, mode, stage.palette());
    }
  }
  fill(
    host,
    h("h3", {}, "Visual photo"),
    h("label", {}, "View", select),
    h(
      "p",
      { class: "hint" },
      `${about.photo_width}×${about.photo_height} photo, placed by the camera's own alignment`,
    ),
  );
  return { refresh: () => select.value !== "thermal" && show() };
}
