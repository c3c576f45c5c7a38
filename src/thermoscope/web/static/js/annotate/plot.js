/**
 * The temperature-versus-time plot of a track: max and mean °C inside its shape on every frame
 * where it is visible, as SVG.
 * @module annotate/plot
 */

const SVG = "http://www.w3.org/2000/svg";
const PAD = { left: 46, right: 12, top: 22, bottom: 22 };

/**
 * An SVG element.
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @param {string} [text]
 * @returns {SVGElement}
 */
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * Round tick positions covering [lo, hi].
 * @param {number} lo
 * @param {number} hi
 * @param {number} count about how many
 * @returns {number[]}
 */
function ticks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= raw) ?? raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toFixed(10)));
  return out;
}

/**
 * One point of the curve.
 * @typedef {object} CurvePoint
 * @property {number} frame
 * @property {number} x position on the time axis (s, or the frame index)
 * @property {number} max °C
 * @property {number} mean °C
 */

/**
 * Draw the curve into `host` (replacing what was there).
 * @param {HTMLElement} host
 * @param {CurvePoint[]} points in frame order
 * @param {object} options
 * @param {number} options.frameCount
 * @param {number} options.current frame shown now
 * @param {(frame: number) => number} options.xOf time-axis position of a frame
 * @param {string} options.xLabel
 * @param {(frame: number) => void} options.onPick a frame was clicked
 */
export function drawPlot(host, points, { frameCount, current, xOf, xLabel, onPick }) {
  const width = Math.max(200, host.clientWidth);
  const height = Math.max(80, host.clientHeight);
  const svg = s("svg", {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    class: "plot",
    role: "img",
  });
  host.replaceChildren(svg); // in the page from the start, so that text can be measured
  const finite = points.filter((p) => Number.isFinite(p.max) && Number.isFinite(p.mean));
  svg.setAttribute("aria-label", `max and mean °C over ${finite.length} frames`);
  const x0 = xOf(0);
  const x1 = Math.max(xOf(frameCount - 1), x0 + 1e-9);
  let lo = Math.min(...finite.map((p) => p.mean));
  let hi = Math.max(...finite.map((p) => p.max));
  if (!finite.length) [lo, hi] = [0, 1];
  if (hi - lo < 0.2) [lo, hi] = [lo - 0.1, hi + 0.1];
  const margin = (hi - lo) * 0.08;
  lo -= margin;
  hi += margin;
  const px = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (width - PAD.left - PAD.right);
  const py = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (height - PAD.top - PAD.bottom);

  for (const t of ticks(lo, hi, Math.max(2, Math.floor(height / 28)))) {
    svg.append(
      s("line", { x1: PAD.left, x2: width - PAD.right, y1: py(t), y2: py(t), class: "grid" }),
    );
    svg.append(
      s(
        "text",
        { x: PAD.left - 6, y: py(t) + 3.5, class: "tick", "text-anchor": "end" },
        t.toFixed(Math.max(0, -Math.floor(Math.log10(hi - lo)) + 1)),
      ),
    );
  }
  // the axis label sits at the right end of the time axis; tick labels that would run into it
  // (or into each other) are left out, so "0.2" and "s" never print as "0.s2"
  const label = s(
    "text",
    { x: width - 2, y: height - 6, class: "tick axis-label", "text-anchor": "end" },
    xLabel,
  );
  svg.append(label);
  let free = label.getBBox().x - 6;
  const xTicks = ticks(x0, x1, Math.max(2, Math.floor(width / 70)));
  for (const t of xTicks.reverse()) {
    const text = s(
      "text",
      { x: px(t), y: height - 6, class: "tick x-tick", "text-anchor": "middle" },
      String(Number(t.toPrecision(4))),
    );
    svg.append(text);
    const box = text.getBBox();
    if (box.width && box.x + box.width > free) text.remove();
    else if (box.width) free = box.x - 6;
  }
  svg.append(
    s("line", {
      x1: px(xOf(current)),
      x2: px(xOf(current)),
      y1: PAD.top,
      y2: height - PAD.bottom,
      class: "cursor",
    }),
  );

  for (const [key, cls] of [
    ["max", "series-max"],
    ["mean", "series-mean"],
  ]) {
    const d = finite
      .map((p, i) => `${i ? "L" : "M"}${px(p.x).toFixed(1)},${py(p[key]).toFixed(1)}`)
      .join("");
    if (d) svg.append(s("path", { d, class: `series ${cls}` }));
    for (const p of finite) {
      const dot = s("circle", {
        cx: px(p.x),
        cy: py(p[key]),
        r: p.frame === current ? 3.5 : 2,
        class: `dot ${cls}`,
      });
      dot.append(s("title", {}, `frame ${p.frame}: ${key} ${p[key].toFixed(2)} °C`));
      svg.append(dot);
    }
  }
  [
    ["max °C", "series-max"],
    ["mean °C", "series-mean"],
  ].forEach(([text, cls], i) => {
    const x = PAD.left + i * 80;
    svg.append(s("rect", { x, y: 8, width: 10, height: 3, class: cls }));
    svg.append(s("text", { x: x + 14, y: 13, class: `legend ${cls}` }, text));
  });
  svg.addEventListener("click", (event) => {
    const rect = svg.getBoundingClientRect();
    const x =
      x0 + ((event.clientX - rect.left - PAD.left) / (width - PAD.left - PAD.right)) * (x1 - x0);
    let best = 0;
    for (let f = 1; f < frameCount; f += 1)
      if (Math.abs(xOf(f) - x) < Math.abs(xOf(best) - x)) best = f;
    onPick(best);
  });
}
