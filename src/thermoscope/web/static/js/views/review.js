/**
 * The review queue in two lists: "to review" (submitted frames a reviewer accepts or rejects)
 * and "to annotate" (new, in progress or rejected frames), each with the frames most in need of
 * a human first (disagreement, NG, low confidence). The preview of the selected one opens a
 * sequence where its drafts or findings are (else on its hottest frame), steps through its
 * frames, and lists its records and verdicts, machine drafts apart from people's work.
 * @module views/review
 */

import * as api from "../api.js";
import { celsiusText, fill, h, promptText, toast } from "../dom.js";
import { hottest, openingFrame } from "../annotate/opening.js";
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
/** The two lists: their route value, title and what an empty one says. */
const STAGES = [
  ["review", "To review", "Nothing waits for review."],
  ["annotate", "To annotate", "Nothing waits for an annotator."],
];

/**
 * The frames a record is drawn on (an annotation's frame, a track's keyframes).
 * @param {any} record
 * @returns {number[]}
 */
function framesOf(record) {
  if (Array.isArray(record.keyframes)) return record.keyframes.map((k) => k.frame);
  return typeof record.frame === "number" ? [record.frame] : [];
}

/**
 * Who made a record: the model for a machine draft, else the person.
 * @param {any} record
 * @returns {HTMLElement}
 */
function madeBy(record) {
  return isMachineDraft(record)
    ? h("span", { class: "badge draft" }, `machine draft · ${record.provenance.model}`)
    : h("span", { class: "small muted" }, record.provenance.author || record.provenance.model);
}

/**
 * A reason of the queue as a short tag ("disagreement", "NG", "low confidence" ...).
 * @param {string} reason the server's text
 * @returns {string}
 */
function shortReason(reason) {
  if (/disagree/i.test(reason)) return "disagreement";
  if (/unsure/i.test(reason)) return "model unsure";
  if (/confidence/i.test(reason)) return "low confidence";
  if (/submitted/i.test(reason)) return "submitted";
  return reason;
}

/** @type {import("../main.js").View} */
export async function renderReview(root, params, ctx) {
  const { pid } = params;
  const offset = Number(params.offset || 0);
  const stage = params.stage === "annotate" ? "annotate" : "review";
  /** "uncertainty": frames whose model score lies nearest its threshold first (active learning) */
  const order = params.order === "uncertainty" ? "uncertainty" : "priority";
  const orderParam = order === "uncertainty" ? "&order=uncertainty" : "";
  const project = await loadProject(pid);
  ctx.setCrumbs([["Projects", "#/"], [project.name, `#/p/${pid}`], ["Review queue"]]);
  const labels = (project.label_schema?.labels ?? []).map((l) => l.name);
  const canReview = project.role === "reviewer" || project.role === "admin";

  const list = h("ol", { class: "queue", "aria-label": "Review queue" });
  const pagerHost = h("div");
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", { class: "thermogram" }));
  const readout = h("div", { class: "preview-readout", "aria-live": "off" });
  const stepper = h("div", { class: "preview-frames", hidden: true });
  const canvasHost = h("div", { class: "canvas-host" }, canvas, readout, stepper);
  const details = h("div", { class: "review-details" });
  /**
   * The selected frame's item, the frame of it shown and the frames read so far.
   * @type {{item: any, revision: number, frameId: string, info: any, index: number,
   *   frames: Map<number, any>, why: string} | null}
   */
  let current = null;
  /** @type {Promise<void>} the selected frame being read */
  let reading = Promise.resolve();
  /** @type {any[]} */
  let entries = [];
  let selectedIndex = -1;

  const viewer = new Viewer(canvas, (c) => {
    if (!current) return;
    for (const v of visibleOn(current.item, current.index)) {
      const draft = isMachineDraft(v.record);
      drawShape(c, viewer, v.shape, {
        color: labelColor(labels, v.record.label),
        draft,
        tag: `${v.record.label}${draft ? " · draft" : ""}`,
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
      h(
        "div",
        { class: "queue-pane" },
        h(
          "nav",
          { class: "queue-stages", "aria-label": "Queues" },
          STAGES.map(([key, title]) =>
            h(
              "a",
              {
                href: `#/p/${pid}/review?stage=${key}${orderParam}`,
                class: `queue-stage${key === stage ? " active" : ""}`,
                dataset: { stage: key },
                "aria-current": key === stage ? "page" : null,
              },
              title,
              h("span", { class: "count" }, ""),
            ),
          ),
        ),
        h(
          "nav",
          { class: "queue-order small", "aria-label": "Order" },
          [
            ["priority", "Most in need first"],
            ["uncertainty", "Model least sure first"],
          ].map(([key, title]) =>
            h(
              "a",
              {
                href: `#/p/${pid}/review?stage=${stage}${key === "uncertainty" ? "&order=uncertainty" : ""}`,
                class: `queue-order-choice${key === order ? " active" : ""}`,
                dataset: { order: key },
                "aria-current": key === order ? "page" : null,
              },
              title,
            ),
          ),
        ),
        list,
        pagerHost,
      ),
      h("div", { class: "preview-pane" }, canvasHost, details),
    ),
  );

  await loadQueue();

  async function loadQueue() {
    const [page, ...totals] = await Promise.all([
      api.get(`/projects/${pid}/review-queue${api.query({ offset, limit: LIMIT, stage, order })}`),
      ...STAGES.map(([key]) =>
        api.get(`/projects/${pid}/review-queue${api.query({ limit: 1, stage: key })}`),
      ),
    ]);
    for (const [i, [key]] of STAGES.entries()) {
      const count = root.querySelector(`.queue-stage[data-stage=${key}] .count`);
      if (count) count.textContent = String(totals[i].total);
    }
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
                  entry.frame.machine_verdict &&
                    h(
                      "span",
                      {
                        class: `badge draft machine-verdict verdict-${entry.frame.machine_verdict}`,
                        title: "the machine's verdict, a draft until a person decides",
                      },
                      `machine ${entry.frame.machine_verdict}`,
                    ),
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
        : h("li", { class: "empty" }, STAGES.find(([key]) => key === stage)?.[2] ?? ""),
    );
    fill(
      pagerHost,
      page.total > LIMIT &&
        pager(page, (o) => `#/p/${pid}/review?stage=${stage}${orderParam}&offset=${o}`),
    );
    if (entries.length) await choose(Math.min(Math.max(selectedIndex, 0), entries.length - 1));
    else {
      current = null;
      stepper.hidden = true;
      fill(details, h("p", { class: "muted" }, "All caught up."));
      viewer.draw();
    }
  }

  /**
   * Select queue entry `i`: read its item, then show the frame it opens on (see
   * annotate/opening.js); a sequence without drafts or findings moves to its hottest frame
   * once all its frames are read, unless the user stepped meanwhile.
   * @param {number} i
   * @returns {Promise<void>}
   */
  function choose(i) {
    selectedIndex = i;
    for (const [k, el] of [...list.querySelectorAll(".queue-entry")].entries())
      el.classList.toggle("active", k === i);
    const entry = entries[i];
    const fid = entry.frame.id;
    reading = Promise.all([api.get(`/frames/${fid}/annotations`), api.get(`/frames/${fid}`)])
      .then(async ([saved, info]) => {
        const opening = openingFrame(saved.item, info);
        const index = opening?.frame ?? 0;
        const frame = await api.celsius(fid, index);
        if (entries[selectedIndex] !== entry) return null;
        current = {
          ...saved,
          frameId: fid,
          info,
          index,
          frames: new Map([[index, frame]]),
          why: opening?.why ?? "hottest",
        };
        viewer.setFrame(frame);
        viewer.autoRange();
        viewer.resize();
        canvas.dataset.frameId = fid;
        drawDetails(entry);
        return opening;
      })
      .then((opening) => {
        if (opening === null && current && current.frameId === fid) findHottest(current);
      });
    return reading;
  }

  /**
   * Read every frame of the shown sequence, then show the hottest (unless the user stepped).
   * @param {NonNullable<typeof current>} shown
   */
  async function findHottest(shown) {
    const start = shown.index;
    for (let f = 0; f < shown.info.frame_count; f += 1) {
      if (current !== shown) return;
      if (!shown.frames.has(f)) shown.frames.set(f, await api.celsius(shown.frameId, f));
    }
    if (current === shown && shown.index === start) await showFrame(hottest(shown.frames));
  }

  /**
   * Show frame `index` of the selected sequence.
   * @param {number} index
   */
  async function showFrame(index) {
    const shown = current;
    if (!shown) return;
    const target = Math.max(0, Math.min(shown.info.frame_count - 1, index));
    shown.index = target;
    if (!shown.frames.has(target))
      shown.frames.set(target, await api.celsius(shown.frameId, target));
    if (current !== shown || shown.index !== target) return;
    viewer.setFrame(shown.frames.get(target));
    drawStepper();
    viewer.draw();
  }

  /** The frame stepper of a sequence: previous, "frame i / n", next. */
  function drawStepper() {
    const shown = current;
    stepper.hidden = !shown || shown.info.frame_count < 2;
    if (!shown || stepper.hidden) return;
    canvas.dataset.frame = String(shown.index);
    fill(
      stepper,
      h(
        "button",
        {
          type: "button",
          class: "ghost small",
          title: "Previous frame (←)",
          onclick: () => showFrame(shown.index - 1),
        },
        "‹",
      ),
      h(
        "span",
        { class: "preview-frame-label" },
        `frame ${shown.index + 1} / ${shown.info.frame_count}`,
      ),
      h(
        "button",
        {
          type: "button",
          class: "ghost small",
          title: "Next frame (→)",
          onclick: () => showFrame(shown.index + 1),
        },
        "›",
      ),
    );
  }

  /** @param {any} entry */
  function drawDetails(entry) {
    const shown = /** @type {NonNullable<typeof current>} */ (current);
    const item = shown.item;
    const sequence = item.frame_count > 1;
    const all = [...item.annotations, ...item.tracks];
    const drafts = all.filter(isMachineDraft);
    const people = all.filter((r) => !isMachineDraft(r));
    const counts = new Map();
    for (const r of people) counts.set(r.review.state, (counts.get(r.review.state) ?? 0) + 1);
    const objects = [
      ...[...counts].map(([state, n]) => `${n} ${state}`),
      drafts.length ? `${drafts.length} machine draft${drafts.length > 1 ? "s" : ""}` : "",
    ].filter(Boolean);
    const whole = itemVerdict(item);
    const verdicts = [...item.verdicts].sort((a, b) => (a.frame ?? -1) - (b.frame ?? -1));
    const submitted = entry.frame.status === "submitted";
    const goTo = (frame) =>
      sequence
        ? h(
            "button",
            { type: "button", class: "link frame-link", onclick: () => showFrame(frame) },
            `frame ${frame + 1}`,
          )
        : null;
    fill(
      details,
      h(
        "div",
        { class: "row" },
        h("h2", {}, entry.frame.filename || entry.frame.id.slice(0, 12)),
        h(
          "a",
          {
            class: "button ghost",
            href: `#/f/${entry.frame.id}${sequence ? `?frame=${shown.index}` : ""}`,
          },
          "Open in editor",
        ),
      ),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Status"),
        h("dd", {}, statusBadge(entry.frame.status)),
        h("dt", {}, "Verdict"),
        h(
          "dd",
          { class: "people-verdict" },
          whole && !isMachineDraft(whole) ? verdictBadge(whole.verdict) : verdictBadge(null),
          whole && !isMachineDraft(whole) && whole.reason
            ? h("span", { class: "small muted" }, ` ${whole.reason}`)
            : "",
        ),
        h("dt", {}, "Machine"),
        h("dd", { class: "machine-verdict" }, verdictBadge(entry.frame.machine_verdict)),
        h("dt", {}, "Objects"),
        h("dd", { class: "object-counts" }, objects.length ? objects.join(", ") : "none"),
        h("dt", {}, "Why here"),
        h("dd", {}, entry.reasons.join("; ") || "—"),
        sequence && h("dt", {}, "Opened on"),
        sequence &&
          h("dd", { class: "opened-on" }, `frame ${shown.index + 1} (${shown.why})`),
      ),
      verdicts.length
        ? h(
            "ul",
            { class: "verdict-list" },
            verdicts.map((v) =>
              h(
                "li",
                { class: `verdict-entry${isMachineDraft(v) ? " machine" : ""}` },
                verdictBadge(v.verdict),
                v.frame === null ? h("span", { class: "small" }, "whole item") : goTo(v.frame),
                madeBy(v),
                v.reason ? h("span", { class: "small muted" }, v.reason) : null,
              ),
            ),
          )
        : null,
      h(
        "ul",
        { class: "object-list compact" },
        all.map((r) =>
          h(
            "li",
            { class: `object${isMachineDraft(r) ? " machine" : ""}` },
            h("span", { class: "swatch", style: `background:${labelColor(labels, r.label)}` }),
            h("span", { class: "label-name" }, r.label),
            goTo(Math.min(...framesOf(r))),
            madeBy(r),
            isMachineDraft(r) ? null : statusBadge(r.review.state),
          ),
        ),
      ),
      !canReview
        ? h("p", { class: "muted small" }, "Reviewers and admins accept or reject.")
        : submitted
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
          : h(
              "p",
              { class: "muted small not-submitted" },
              "Nobody has submitted this frame yet: it waits for an annotator. " +
                "Open it in the editor to annotate it.",
            ),
    );
    drawStepper();
  }

  /** @param {"accept" | "reject"} action */
  async function decide(action) {
    await reading;
    const entry = entries[selectedIndex];
    if (!canReview || !entry || current?.frameId !== entry.frame.id) return;
    if (entry.frame.status !== "submitted") {
      toast("Nobody has submitted this frame yet: there is nothing to accept or reject.");
      return;
    }
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
    else if (key === "arrowleft" && current) showFrame(current.index - 1);
    else if (key === "arrowright" && current) showFrame(current.index + 1);
    else if (key === "enter" && entries[selectedIndex])
      location.hash = `#/f/${entries[selectedIndex].frame.id}${
        current && current.item.frame_count > 1 ? `?frame=${current.index}` : ""
      }`;
    else return;
    e.preventDefault();
  }
  window.addEventListener("keydown", onKey);
  return () => {
    window.removeEventListener("keydown", onKey);
    viewer.dispose();
  };
}
