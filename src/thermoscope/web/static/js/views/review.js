/**
 * The review queue: frames most in need of a human first (disagreement, NG, low confidence,
 * submitted), a preview of the selected one with its annotations, accept / reject with comment.
 * @module views/review
 */

import * as api from "../api.js";
import { celsiusText, fill, h, promptText, toast } from "../dom.js";
import { drawShape, labelColor } from "../annotate/overlay.js";
import { isMachineDraft, itemVerdict, visibleOn } from "../annotate/records.js";
import { Viewer } from "../annotate/viewer.js";
import {
  loadProject,
  pager,
  projectTabs,
  rememberOrder,
  statusBadge,
  verdictBadge,
} from "./common.js";

const LIMIT = 50;
const PALETTE_KEY = "thermoscope.palette";

/**
 * A reason of the queue as a short tag ("disagreement", "NG", "low confidence" ...).
 * @param {string} reason the server's text
 * @returns {string}
 */
function shortReason(reason) {
  if (/disagree/i.test(reason)) return "disagreement";
  if (/confidence/i.test(reason)) return "low confidence";
  if (/submitted/i.test(reason)) return "submitted";
  return reason;
}

/** @type {import("../main.js").View} */
export async function renderReview(root, params, ctx) {
  const { pid } = params;
  const offset = Number(params.offset || 0);
  const project = await loadProject(pid);
  ctx.setCrumbs([["Projects", "#/"], [project.name, `#/p/${pid}`], ["Review queue"]]);
  const labels = (project.label_schema?.labels ?? []).map((l) => l.name);
  const canReview = project.role === "reviewer" || project.role === "admin";

  const list = h("ol", { class: "queue", "aria-label": "Review queue" });
  const pagerHost = h("div");
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "thermogram" }));
  const readout = h("div", { class: "preview-readout", "aria-live": "off" });
  const canvasHost = h("div", { class: "canvas-host" }, canvas, readout);
  const details = h("div", { class: "review-details" });
  /** @type {{item: any, revision: number, frameId: string} | null} the selected frame's item */
  let current = null;
  /** @type {Promise<void>} the selected frame being read */
  let reading = Promise.resolve();
  /** @type {any[]} */
  let entries = [];
  let selectedIndex = -1;

  const viewer = new Viewer(canvas, (c) => {
    if (!current) return;
    for (const v of visibleOn(current.item, 0)) {
      drawShape(c, viewer, v.shape, {
        color: labelColor(labels, v.record.label),
        draft: isMachineDraft(v.record),
        tag: v.record.label,
      });
    }
  });
  viewer.setPalette(localStorage.getItem(PALETTE_KEY) || "iron");
  canvas.addEventListener("pointermove", (event) => {
    const probe = viewer.probe(...viewer.toFrame(event));
    readout.textContent = probe
      ? `x ${probe.col} · y ${probe.row}   ${celsiusText(probe.celsius)}`
      : "";
  });
  canvas.addEventListener("pointerleave", () => (readout.textContent = ""));

  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, project.name), projectTabs(project, "review")),
    h(
      "div",
      { class: "review" },
      h("div", { class: "queue-pane" }, list, pagerHost),
      h("div", { class: "preview-pane" }, canvasHost, details),
    ),
  );

  await loadQueue();

  async function loadQueue() {
    const page = await api.get(
      `/projects/${pid}/review-queue${api.query({ offset, limit: LIMIT })}`,
    );
    entries = page.items;
    rememberOrder(entries.map((e) => e.frame.id));
    fill(
      list,
      entries.length
        ? entries.map((entry, i) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "queue-entry",
                  dataset: { frameId: entry.frame.id },
                  onclick: () => choose(i),
                },
                h(
                  "span",
                  { class: "queue-name" },
                  entry.frame.filename || entry.frame.id.slice(0, 12),
                ),
                h(
                  "span",
                  { class: "queue-meta" },
                  statusBadge(entry.frame.status),
                  verdictBadge(entry.frame.verdict),
                ),
                h(
                  "span",
                  { class: "reasons" },
                  entry.reasons.map((r) =>
                    h("span", { class: "reason", title: r }, shortReason(r)),
                  ),
                ),
              ),
            ),
          )
        : h("li", { class: "empty" }, "Nothing waits for review."),
    );
    fill(pagerHost, page.total > LIMIT && pager(page, (o) => `#/p/${pid}/review?offset=${o}`));
    if (entries.length) await choose(Math.min(Math.max(selectedIndex, 0), entries.length - 1));
    else {
      current = null;
      fill(details, h("p", { class: "muted" }, "All caught up."));
      viewer.draw();
    }
  }

  /**
   * Select queue entry `i`: read its item and first frame, then show them.
   * @param {number} i
   * @returns {Promise<void>}
   */
  function choose(i) {
    selectedIndex = i;
    for (const [k, el] of [...list.querySelectorAll(".queue-entry")].entries())
      el.classList.toggle("active", k === i);
    const entry = entries[i];
    reading = Promise.all([
      api.get(`/frames/${entry.frame.id}/annotations`),
      api.celsius(entry.frame.id, 0),
    ]).then(([saved, frame]) => {
      if (entries[selectedIndex] !== entry) return;
      current = { ...saved, frameId: entry.frame.id };
      viewer.setFrame(frame);
      viewer.autoRange();
      viewer.resize();
      drawDetails(entry);
    });
    return reading;
  }

  /** @param {any} entry */
  function drawDetails(entry) {
    const item = /** @type {any} */ (current).item;
    const all = [...item.annotations, ...item.tracks];
    const verdict = itemVerdict(item);
    const counts = new Map();
    for (const r of all) counts.set(r.review.state, (counts.get(r.review.state) ?? 0) + 1);
    fill(
      details,
      h(
        "div",
        { class: "row" },
        h("h2", {}, entry.frame.filename || entry.frame.id.slice(0, 12)),
        h("a", { class: "button ghost", href: `#/f/${entry.frame.id}` }, "Open in editor"),
      ),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Status"),
        h("dd", {}, statusBadge(entry.frame.status)),
        h("dt", {}, "Verdict"),
        h(
          "dd",
          {},
          verdictBadge(verdict?.verdict),
          verdict?.reason ? h("span", { class: "small muted" }, ` ${verdict.reason}`) : "",
        ),
        h("dt", {}, "Machine"),
        h("dd", {}, verdictBadge(entry.frame.machine_verdict)),
        h("dt", {}, "Objects"),
        h("dd", {}, all.length ? [...counts].map(([s, n]) => `${n} ${s}`).join(", ") : "none"),
        h("dt", {}, "Why here"),
        h("dd", {}, entry.reasons.join("; ") || "—"),
      ),
      h(
        "ul",
        { class: "object-list compact" },
        all.map((r) =>
          h(
            "li",
            { class: "object" },
            h("span", { class: "swatch", style: `background:${labelColor(labels, r.label)}` }),
            h("span", { class: "label-name" }, r.label),
            h("span", { class: "small muted" }, r.provenance.author || r.provenance.model),
            statusBadge(r.review.state),
          ),
        ),
      ),
      canReview
        ? h(
            "div",
            { class: "review-actions" },
            h(
              "button",
              { type: "button", class: "primary accept", onclick: () => decide("accept") },
              "Accept",
              h("kbd", {}, "A"),
            ),
            h(
              "button",
              { type: "button", class: "danger reject", onclick: () => decide("reject") },
              "Reject",
              h("kbd", {}, "R"),
            ),
          )
        : h("p", { class: "muted small" }, "Reviewers and admins accept or reject."),
    );
  }

  /** @param {"accept" | "reject"} action */
  async function decide(action) {
    await reading;
    const entry = entries[selectedIndex];
    if (!canReview || !entry || current?.frameId !== entry.frame.id) return;
    let comment = "";
    if (action === "reject") {
      const text = await promptText({
        title: "Reject: what needs fixing?",
        label: "Comment for the annotator (required)",
        confirm: "Reject",
        required: true,
      });
      if (text === null) return;
      comment = text;
    }
    try {
      await api.post(`/frames/${entry.frame.id}/review`, {
        action,
        comment,
        revision: current?.revision,
      });
      toast(action === "accept" ? "Accepted." : "Rejected, back to the annotator.");
      await loadQueue();
    } catch (error) {
      toast(`Could not ${action}: ${error.message}`, "error");
    }
  }

  /** @param {KeyboardEvent} e */
  function onKey(e) {
    if (
      /** @type {HTMLElement} */ (e.target).closest("input, select, textarea, dialog") ||
      document.querySelector("dialog[open]")
    )
      return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key.toLowerCase();
    if (key === "a") decide("accept");
    else if (key === "r") decide("reject");
    else if ((key === "arrowdown" || key === "j") && selectedIndex + 1 < entries.length)
      choose(selectedIndex + 1);
    else if ((key === "arrowup" || key === "k") && selectedIndex > 0) choose(selectedIndex - 1);
    else if (key === "enter" && entries[selectedIndex])
      location.hash = `#/f/${entries[selectedIndex].frame.id}`;
    else return;
    e.preventDefault();
  }
  window.addEventListener("keydown", onKey);
  return () => {
    window.removeEventListener("keydown", onKey);
    viewer.dispose();
  };
}
