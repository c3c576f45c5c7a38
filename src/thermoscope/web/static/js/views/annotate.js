/**
 * The annotate view: one frame or sequence, its temperatures on a canvas, the drawing tools,
 * tracks and the player, verdicts, undo / redo and autosave.
 * @module views/annotate
 */

import * as api from "../api.js";
import { celsiusText, fill, h, promptText, toast } from "../dom.js";
import { PALETTES } from "../palettes.js";
import { shapeStats } from "../shapes.js";
import { autoRange } from "../thermal.js";
import { shapeAt } from "../tracks.js";
import { Saver } from "../annotate/autosave.js";
import { showConflicts } from "../annotate/conflicts.js";
import { heatImage, loadHeatmap } from "../annotate/heatmap.js";
import { showHelp } from "../annotate/help.js";
import { History } from "../annotate/history.js";
import { attributesFor } from "../annotate/labels.js";
import { mergeItems, resolve, stable } from "../annotate/merge.js";
import { hottest, openingFrame } from "../annotate/opening.js";
import { drawShape, labelColor } from "../annotate/overlay.js";
import { Player } from "../annotate/player.js";
import { drawPlot } from "../annotate/plot.js";
import * as records from "../annotate/records.js";
import { renderSidebar } from "../annotate/sidebar.js";
import { Interaction } from "../annotate/tools.js";
import { Viewer } from "../annotate/viewer.js";
import { neighbour, statusBadge } from "./common.js";

const TOOLS = [
  ["select", "V", "Select and edit", "M4 3l14 7-6 2-2 6z"],
  ["box", "B", "Box", "M4 5h14v12H4z"],
  ["polygon", "P", "Polygon", "M5 18L3 8l8-5 8 6-3 9z"],
  ["brush", "M", "Brush mask", "M4 18c3 0 4-2 4-4s2-3 3-3l7-7-2-2-7 7c0 1-1 3-3 3s-4 1-4 4z"],
  ["point", "X", "Point", "M11 4v14M4 11h14"],
];
const TOOL_KEYS = Object.fromEntries(TOOLS.map(([name, key]) => [key.toLowerCase(), name]));
const PALETTE_KEY = "thermoscope.palette";

/**
 * An icon as inline SVG (24 px box).
 * @param {string} path
 * @returns {SVGSVGElement}
 */
function icon(path) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 22 22");
  svg.setAttribute("aria-hidden", "true");
  const p = document.createElementNS("http://www.w3.org/2000/svg", "path");
  p.setAttribute("d", path);
  svg.append(p);
  return svg;
}

/** @type {import("../main.js").View} */
export async function renderAnnotate(root, params, ctx) {
  const fid = params.fid;
  const asked = params.frame ? Number(params.frame) : null;
  const [info, saved] = await Promise.all([
    api.get(`/frames/${fid}`),
    api.get(`/frames/${fid}/annotations`),
  ]);
  // a sequence opens where there is something to see (see annotate/opening.js)
  const opening = asked === null ? openingFrame(saved.item, info) : { frame: asked, why: "asked" };
  const startIndex = Math.max(0, Math.min(opening?.frame ?? 0, info.frame_count - 1));
  const t0 = performance.now();
  let dataMs = 0;
  const [project, first] = await Promise.all([
    api.get(`/projects/${info.project_id}`),
    api.celsius(fid, startIndex).then((frame) => {
      dataMs = performance.now() - t0;
      return frame;
    }),
  ]);
  const schema = project.label_schema ?? { labels: [] };
  const labels = schema.labels.map((l) => l.name);
  const readOnly = project.role === "viewer";

  const state = {
    frameInfo: info,
    project,
    user: ctx.user,
    index: startIndex,
    tool: readOnly ? "select" : "box",
    label: labels[0] ?? "",
    /** @type {string | null} */
    selected: null,
    /** the user picked the selection (a click, Tab): number keys then relabel it */
    explicit: false,
    trackMode: info.frame_count > 1,
    /** the display range was set by hand (a sequence's range then stays as it is) */
    rangeTouched: false,
    brushRadius: 3,
    /** the model's heat map is laid over the frame */
    heatmap: false,
  };
  /** @type {Map<number, import("../thermal.js").Frame>} */
  const frames = new Map([[state.index, first]]);
  let disposed = false;
  /** frames shown, keys pressed and clicks since opening (the jump to the hottest frame
   * happens only while there are none: it never overrides the user) */
  let touches = 0;

  ctx.setCrumbs([
    ["Projects", "#/"],
    [project.name, `#/p/${project.id}`],
    [info.filename || fid.slice(0, 12)],
  ]);
  root.className = "view annotate-view";

  // ---- layout ------------------------------------------------------------------------------
  const canvas = /** @type {HTMLCanvasElement} */ (
    h("canvas", {
      class: "thermogram",
      tabindex: 0,
      "aria-label": "Thermogram",
      dataset: { frameId: fid, opening: opening?.why ?? "hottest" },
    })
  );
  const canvasHost = h("div", { class: "canvas-host" }, canvas);
  const readout = {
    pos: h("span", { class: "cursor-pos" }, "—"),
    temp: h("span", { class: "cursor-temp", "aria-live": "off" }, "—"),
    zoom: h("span", { class: "zoom" }),
    timing: h("span", { class: "timing muted" }),
  };
  const banner = h("div", { class: "banner", hidden: true, role: "alert" });
  const sidebar = h("aside", { class: "sidebar", "aria-label": "Panels" });
  const toolButtons = TOOLS.map(([name, key, title, path]) =>
    h(
      "button",
      {
        type: "button",
        class: "tool",
        dataset: { tool: name },
        title: `${title} (${key})`,
        "aria-label": title,
        disabled: readOnly && name !== "select",
        onclick: () => setTool(name),
      },
      icon(path),
      h("kbd", {}, key),
    ),
  );
  const trackToggle = h(
    "button",
    {
      type: "button",
      class: `tool track-toggle${state.trackMode ? " active" : ""}`,
      title: "New shapes become tracks (T)",
      "aria-pressed": String(state.trackMode),
      hidden: info.frame_count < 2,
      onclick: () => toggleTrackMode(),
    },
    h("span", {}, "Track"),
    h("kbd", {}, "T"),
  );
  const saveState = h("span", { class: "save-state saved" }, `Saved · revision ${saved.revision}`);
  const statusEl = h("span", { class: "frame-status" }, statusBadge(info.status));
  const undoButton = h(
    "button",
    { type: "button", class: "ghost", title: "Undo (Ctrl+Z)", onclick: () => history.undo() },
    "Undo",
  );
  const redoButton = h(
    "button",
    { type: "button", class: "ghost", title: "Redo (Ctrl+Shift+Z)", onclick: () => history.redo() },
    "Redo",
  );
  const submitButton = h(
    "button",
    {
      type: "button",
      class: "primary",
      title: "Submit for review (Ctrl+Enter)",
      disabled: readOnly,
      onclick: () => submit(),
    },
    "Submit",
  );
  fill(
    ctx.extra,
    statusEl,
    saveState,
    undoButton,
    redoButton,
    h(
      "button",
      {
        type: "button",
        class: "ghost",
        title: "Previous item (Page Up)",
        onclick: () => openNeighbour(-1),
      },
      "‹",
    ),
    h(
      "button",
      {
        type: "button",
        class: "ghost",
        title: "Next item (Page Down)",
        onclick: () => openNeighbour(1),
      },
      "›",
    ),
    submitButton,
    h(
      "a",
      {
        class: "button ghost measure-link",
        href: `#/f/${fid}/measure`,
        title: "Measure: colour bar, isotherm, spots, emissivity",
        onclick: (/** @type {MouseEvent} */ e) => {
          e.preventDefault();
          location.hash = `#/f/${fid}/measure?frame=${state.index}`;
        },
      },
      "Measure",
    ),
    h(
      "button",
      {
        type: "button",
        class: "ghost help-button",
        title: "Keyboard shortcuts (?)",
        onclick: showHelp,
      },
      "?",
    ),
  );

  // ---- model -------------------------------------------------------------------------------
  const history = new History(saved.item, () => {
    saver.changed();
    refresh();
  });
  const saver = new Saver({
    frameId: fid,
    revision: saved.revision,
    base: saved.item,
    current: () => history.item,
    onState: (s, message) => {
      saveState.className = `save-state ${s}`;
      saveState.textContent = message;
      if (s === "saved" && state.frameInfo.status === "new") {
        state.frameInfo = { ...state.frameInfo, status: "in_progress" };
        fill(statusEl, statusBadge("in_progress"));
      }
    },
    onConflict: (body, base) => mergeConflict(body, base),
  });
  /** @type {import("../annotate/merge.js").Conflict[]} conflicts the user has not settled */
  let conflicts = [];

  const viewer = new Viewer(canvas, (c) => drawOverlay(c));
  viewer.setPalette(
    PALETTES.some((p) => p.name === localStorage.getItem(PALETTE_KEY))
      ? /** @type {string} */ (localStorage.getItem(PALETTE_KEY))
      : "iron",
  );
  const interaction = new Interaction(viewer, {
    tool: () => state.tool,
    visible: () => records.visibleOn(history.item, state.index),
    selected: () => state.selected,
    select: (id) => select(id),
    create: (shape) => create(shape),
    reshape: (id, shape) => reshape(id, shape),
    brushRadius: () => state.brushRadius,
    color: () => labelColor(labels, (state.explicit && selectedRecord()?.label) || state.label),
    cursor: (probe) => showCursor(probe),
    rangeChanged: () => {
      state.rangeTouched = true;
      refreshSoon();
    },
    togglePlay: () => player?.toggle(),
  });
  const player =
    info.frame_count > 1
      ? new Player({
          frameCount: info.frame_count,
          timestamps: info.timestamps_s,
          onSeek: (f) => goto(f),
          ready: (f) => frames.has(f),
        })
      : null;

  fill(
    root,
    h(
      "div",
      { class: "annotate" },
      h("nav", { class: "toolbox", "aria-label": "Tools" }, toolButtons, trackToggle),
      h(
        "section",
        { class: "stage" },
        banner,
        info.issues?.length
          ? h(
              "p",
              { class: "file-issues", role: "status" },
              `${info.format}: ${info.issues.join("; ")}`,
            )
          : null,
        canvasHost,
        h(
          "div",
          { class: "statusbar" },
          readout.pos,
          readout.temp,
          h("span", { class: "spacer" }),
          readout.zoom,
          readout.timing,
        ),
        player?.element,
      ),
      sidebar,
    ),
  );

  // ---- drawing -----------------------------------------------------------------------------
  /** @param {CanvasRenderingContext2D} c */
  function drawOverlay(c) {
    const hidden = interaction.hiddenId();
    const mineCopies = new Set(conflicts.map((k) => k.mineId));
    for (const v of records.visibleOn(history.item, state.index)) {
      if (v.record.id === hidden) continue;
      const preview = interaction.preview?.id === v.record.id ? interaction.preview.shape : v.shape;
      const draft = records.isMachineDraft(v.record);
      drawShape(c, viewer, preview, {
        color: labelColor(labels, v.record.label),
        selected: v.record.id === state.selected,
        draft,
        interpolated: v.kind === "track" && !v.keyframe,
        tag:
          v.record.label +
          (draft ? " · draft" : "") +
          (mineCopies.has(v.record.id) ? " · yours" : "") +
          (v.kind === "track" ? (v.keyframe ? " ◆" : " ◇") : ""),
      });
    }
    interaction.drawTransient(c);
    readout.zoom.textContent = `${Math.round(viewer.view.scale * 100)} %`;
  }

  let refreshQueued = false;
  /** Redraw everything on the next animation frame (for bursts: dragging the range). */
  function refreshSoon() {
    if (refreshQueued) return;
    refreshQueued = true;
    requestAnimationFrame(() => {
      refreshQueued = false;
      refresh();
    });
  }

  /** Redraw canvas, panels, player and plot after any change. */
  function refresh() {
    const visible = records.visibleOn(history.item, state.index);
    if (state.selected && !records.findRecord(history.item, state.selected)) state.selected = null;
    viewer.draw();
    renderSidebar(sidebar, controller);
    undoButton.disabled = !history.undoStack.length;
    redoButton.disabled = !history.redoStack.length;
    if (player) {
      player.show(state.index);
      const track = history.item.tracks.find((t) => t.id === state.selected);
      player.setMarks(track ? track.keyframes.map((k) => k.frame) : []);
      drawTrackPlot(track);
    }
    canvas.dataset.visible = String(visible.length);
  }

  /** @param {any} track the selected track, or undefined */
  function drawTrackPlot(track) {
    if (!player) return;
    if (!track) {
      fill(
        player.plot,
        h(
          "p",
          { class: "muted small plot-hint" },
          "Select a track to see its max and mean °C over time.",
        ),
      );
      return;
    }
    const points = [];
    for (let f = 0; f < info.frame_count; f += 1) {
      const shape = shapeAt(track, f);
      const data = frames.get(f);
      if (!shape || !data) continue;
      const stats = shapeStats(data.celsius, data.width, data.height, shape);
      points.push({ frame: f, x: player.timeOf(f), max: stats.max, mean: stats.mean });
    }
    const host = player.plot;
    drawPlot(host, points, {
      frameCount: info.frame_count,
      current: state.index,
      xOf: (f) => player.timeOf(f),
      xLabel: info.timestamps_s ? "time (s)" : "frame",
      onPick: (f) => goto(f),
    });
    host.dataset.points = JSON.stringify(
      points.map((p) => ({ frame: p.frame, max: p.max, mean: p.mean })),
    );
  }

  /** @param {{col: number, row: number, celsius: number} | null} probe */
  function showCursor(probe) {
    readout.pos.textContent = probe ? `x ${probe.col} · y ${probe.row}` : "—";
    readout.temp.textContent = probe ? celsiusText(probe.celsius) : "—";
  }

  /**
   * Someone else saved meanwhile: merge their item with this page's edits (nothing of either
   * is lost), save the merge over their revision and show what both changed.
   * @param {{detail: string, revision: number, item: any}} body the server's 409 answer
   * @param {any} base the item as this page last saved it
   */
  function mergeConflict(body, base) {
    const merged = mergeItems(base, history.item, body.item);
    history.reset(merged.item);
    conflicts = merged.conflicts;
    if (stable(merged.item) !== stable(body.item)) saver.changed();
    showBanner(body.revision);
    refresh();
  }

  /**
   * The conflict banner (annotate/conflicts.js); a choice settles one conflict.
   * @param {number | null} revision the server's revision merged with (null: shown again)
   */
  function showBanner(revision) {
    showConflicts(banner, conflicts, revision, (conflict, keep) => {
      edit((item) => resolve(item, conflict, keep));
      conflicts = conflicts.filter((c) => c !== conflict);
      showBanner(null);
    });
  }

  // ---- frames of a sequence ----------------------------------------------------------------
  /** @type {Map<number, Promise<import("../thermal.js").Frame>>} frames being fetched */
  const pending = new Map();

  /**
   * The data of one frame (fetched once).
   * @param {number} index
   * @returns {Promise<import("../thermal.js").Frame>}
   */
  function load(index) {
    const have = frames.get(index);
    if (have) return Promise.resolve(have);
    if (!pending.has(index)) {
      pending.set(
        index,
        api.celsius(fid, index).then((frame) => {
          frames.set(index, frame);
          pending.delete(index);
          return frame;
        }),
      );
    }
    return /** @type {Promise<import("../thermal.js").Frame>} */ (pending.get(index));
  }

  /**
   * Fetch the other frames of a sequence in the background, two at a time; then, unless the
   * range was set by hand, show the whole sequence in one range (from the coldest frame's 1st
   * to the warmest frame's 99th percentile), so that colours compare across frames.
   */
  async function preload() {
    const order = Array.from({ length: info.frame_count }, (_, i) => i).filter(
      (i) => !frames.has(i),
    );
    const worker = async () => {
      while (order.length && !disposed) {
        await load(/** @type {number} */ (order.shift())).catch(() => null);
        if (state.selected) refreshSoon();
      }
    };
    await Promise.all([worker(), worker()]);
    if (disposed) return;
    if (!opening && touches === 0) goto(hottest(frames));
    if (state.rangeTouched || frames.size < 2) return;
    const ranges = [...frames.values()].map((f) => autoRange(f)).filter((r) => r !== null);
    viewer.setRange(Math.min(...ranges.map((r) => r[0])), Math.max(...ranges.map((r) => r[1])));
    refresh();
  }

  /**
   * Show frame `index` of the sequence.
   * @param {number} index
   */
  async function goto(index) {
    const target = Math.max(0, Math.min(info.frame_count - 1, index));
    if (target === state.index && viewer.frame === frames.get(target)) return;
    state.index = target;
    touches += 1;
    interaction.reset();
    const found = state.selected && records.findRecord(history.item, state.selected);
    if (found && found.kind === "annotation" && found.record.frame !== target)
      state.selected = null;
    const frame = await load(target);
    if (state.index !== target || disposed) return;
    viewer.setFrame(frame);
    refresh();
    probeAgain();
  }

  /** Read the °C under a pointer that stayed where it was (the frame under it changed). */
  function probeAgain() {
    const p = interaction.pointer;
    if (p) showCursor(viewer.probe(p[0], p[1]));
  }

  // ---- edits -------------------------------------------------------------------------------
  /** @returns {any} the selected annotation or track */
  function selectedRecord() {
    return state.selected ? records.findRecord(history.item, state.selected)?.record : undefined;
  }

  /**
   * Apply an edit unless the view is read-only.
   * @param {(item: any) => (boolean | void)} change
   * @returns {boolean}
   */
  function edit(change) {
    if (readOnly) {
      toast("You can look but not edit in this project (viewer role).", "error");
      return false;
    }
    return history.apply(change);
  }

  /** @param {import("../shapes.js").Shape} shape */
  function create(shape) {
    if (!state.label) {
      toast("No label to give the shape: the project's label schema is empty.", "error");
      return;
    }
    let id = "";
    const spec = {
      label: state.label,
      attributes: attributesFor(schema, state.label),
      frame: state.index,
      shape,
      author: ctx.user.username,
      track: state.trackMode && info.frame_count > 1,
    };
    if (edit((item) => void (id = records.addShape(item, spec)))) select(id, false);
  }

  /**
   * @param {string} id
   * @param {import("../shapes.js").Shape | null} shape null removes the record
   */
  function reshape(id, shape) {
    if (shape) edit((item) => records.setShape(item, id, state.index, shape, ctx.user.username));
    else remove(id);
  }

  /** @param {string} id */
  function remove(id) {
    if (edit((item) => records.removeRecord(item, id))) state.selected = null;
    refresh();
  }

  /**
   * @param {string | null} id
   * @param {boolean} [explicit] the user picked it (false: the view did, after drawing or
   *   deciding a draft)
   */
  function select(id, explicit = true) {
    state.selected = id;
    state.explicit = Boolean(id) && explicit;
    refresh();
  }

  /**
   * Accept or reject a machine draft (the selected one, else the first on this frame), then
   * select the next draft.
   * @param {boolean} accept
   * @param {string} [id]
   */
  function decideDraft(accept, id) {
    const drafts = records
      .visibleOn(history.item, state.index)
      .filter((v) => records.isMachineDraft(v.record));
    const target =
      id ?? (drafts.find((v) => v.record.id === state.selected) ?? drafts[0])?.record.id;
    if (!target) {
      toast("No machine draft on this frame.");
      return;
    }
    const changed = edit((item) =>
      accept
        ? records.acceptDraft(item, target, ctx.user.username)
        : records.removeRecord(item, target),
    );
    if (!changed) return;
    const next = records
      .visibleOn(history.item, state.index)
      .find((v) => records.isMachineDraft(v.record));
    select(next ? next.record.id : accept ? target : null, false);
  }

  /**
   * Set the OK / NG verdict (NG asks for the reason).
   * @param {"OK" | "NG"} verdict
   * @param {boolean} frameScoped on the current frame of a sequence instead of the whole item
   */
  async function setVerdict(verdict, frameScoped) {
    if (readOnly) return;
    const scoped = frameScoped && info.frame_count > 1;
    let reason = "";
    if (verdict === "NG") {
      const current = scoped
        ? records.frameVerdict(history.item, state.index)
        : records.itemVerdict(history.item);
      const counts = new Map();
      for (const v of records.visibleOn(history.item, state.index))
        counts.set(v.record.label, (counts.get(v.record.label) ?? 0) + 1);
      const suggestion =
        current?.verdict === "NG"
          ? current.reason
          : [...counts].map(([l, n]) => (n > 1 ? `${l} ×${n}` : l)).join(", ");
      const text = await promptText({
        title: "NG: why?",
        label: "Reason (required)",
        value: suggestion,
        confirm: "Set NG",
        required: true,
      });
      if (text === null) return;
      reason = text;
    }
    edit((item) =>
      records.setVerdict(
        item,
        verdict,
        reason,
        ctx.user.username,
        scoped ? state.index : undefined,
      ),
    );
  }

  /** Submit the item for review (after saving what is unsaved). */
  async function submit() {
    await saver.flush();
    try {
      const body = await api.post(`/frames/${fid}/review`, {
        action: "submit",
        revision: saver.revision,
      });
      history.reset(body.item);
      saver.reset(body.revision, body.item);
      state.frameInfo = { ...state.frameInfo, status: body.status };
      fill(statusEl, statusBadge(body.status));
      saveState.textContent = `Saved · revision ${body.revision}`;
      toast("Submitted for review.");
      refresh();
    } catch (error) {
      toast(`Not submitted: ${error.message}`, "error");
    }
  }

  /** @param {number} step */
  async function openNeighbour(step) {
    const next = neighbour(fid, step);
    if (!next) {
      toast(
        step > 0 ? "This is the last item of the list." : "This is the first item of the list.",
      );
      return;
    }
    await saver.flush();
    location.hash = `#/f/${next}`;
  }

  /** @param {string} name */
  function setTool(name) {
    state.tool = name;
    interaction.reset();
    for (const b of toolButtons) b.classList.toggle("active", b.dataset.tool === name);
    canvas.dataset.tool = name;
  }

  function toggleTrackMode() {
    if (info.frame_count < 2) return;
    state.trackMode = !state.trackMode;
    trackToggle.setAttribute("aria-pressed", String(state.trackMode));
    trackToggle.classList.toggle("active", state.trackMode);
  }

  /**
   * The label of the next shape; it also relabels the selected shape when the user picked it
   * (not the shape just drawn, which stays selected).
   * @param {string} name
   */
  function chooseLabel(name) {
    state.label = name;
    const record = state.explicit ? selectedRecord() : undefined;
    if (record && record.label !== name) {
      edit((item) =>
        records.setLabel(
          item,
          record.id,
          name,
          attributesFor(schema, name, record.attributes),
          ctx.user.username,
        ),
      );
    }
    refresh();
  }

  /** @param {string} name */
  function setPalette(name) {
    viewer.setPalette(name);
    localStorage.setItem(PALETTE_KEY, name);
    refresh();
  }

  /**
   * Move the display range (level up / down, span wider / narrower).
   * @param {number} levelStep fraction of the span
   * @param {number} spanFactor
   */
  function nudgeRange(levelStep, spanFactor) {
    state.rangeTouched = true;
    const centre = (viewer.low + viewer.high) / 2 + levelStep * (viewer.high - viewer.low);
    const span = (viewer.high - viewer.low) * spanFactor;
    viewer.setRange(centre - span / 2, centre + span / 2);
    refreshSoon();
  }

  /** @param {number} step +1 or -1 */
  function cycleSelection(step) {
    const visible = records.visibleOn(history.item, state.index);
    if (!visible.length) return;
    const i = visible.findIndex((v) => v.record.id === state.selected);
    const next =
      i < 0 ? (step > 0 ? 0 : visible.length - 1) : (i + step + visible.length) % visible.length;
    select(visible[next].record.id);
  }

  /** @type {import("../annotate/sidebar.js").Controller} */
  const controller = {
    state,
    item: () => history.item,
    labels,
    schema,
    viewer,
    select,
    chooseLabel,
    relabel: (id, label, attributes) =>
      edit((item) =>
        records.setLabel(
          item,
          id,
          label,
          attributesFor(schema, label, attributes),
          ctx.user.username,
        ),
      ),
    remove,
    accept: (id) => decideDraft(true, id),
    reject: (id) => decideDraft(false, id),
    verdict: (v, frameScoped) => setVerdict(v, frameScoped),
    removeKeyframe: (id, frame) =>
      edit((item) => records.removeKeyframe(item, id, frame, ctx.user.username)),
    goto,
    setPalette,
    setRange: (low, high) => {
      state.rangeTouched = true;
      viewer.setRange(low, high);
      refresh();
    },
    autoRange: () => {
      state.rangeTouched = true;
      viewer.autoRange();
      refresh();
    },
    centreOn: (x, y) => {
      const rect = canvas.getBoundingClientRect();
      const scale = Math.max(viewer.view.scale, 4);
      viewer.setView(scale, rect.width / 2 - x * scale, rect.height / 2 - y * scale);
    },
    toggleHeatmap: (on) => {
      state.heatmap = on;
      heat ??= loadHeatmap(fid).then((map) => {
        canvas.dataset.heatmapPeak = map.peak.join(",");
        return heatImage(map);
      });
      heat
        .then((image) => {
          if (!disposed) viewer.setHeatmap(state.heatmap ? image : null);
        })
        .catch((err) => toast(`Heat map: ${err.message}`, "error"));
      refresh();
    },
  };
  /** @type {Promise<HTMLCanvasElement> | null} the model's heat map image, loaded once */
  let heat = null;

  // ---- keyboard ----------------------------------------------------------------------------
  /** @param {KeyboardEvent} e */
  function onKeyDown(e) {
    touches += 1;
    const target = /** @type {HTMLElement} */ (e.target);
    if (target.closest("input, select, textarea, dialog") || document.querySelector("dialog[open]"))
      return;
    if (interaction.keydown(e)) {
      e.preventDefault();
      return;
    }
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const mod = e.ctrlKey || e.metaKey;
    let handled = true;
    if (mod && key === "z") e.shiftKey ? history.redo() : history.undo();
    else if (mod && key === "y") history.redo();
    else if (mod && key === "s") saver.flush();
    else if (mod && key === "Enter") submit();
    else if (mod || e.altKey) handled = false;
    else if (e.key === "?") showHelp();
    else if (TOOL_KEYS[key] && !e.shiftKey) setTool(readOnly ? "select" : TOOL_KEYS[key]);
    else if (key === "t") toggleTrackMode();
    else if (/^[1-9]$/.test(key) && labels[Number(key) - 1]) chooseLabel(labels[Number(key) - 1]);
    else if (key === "a") decideDraft(true);
    else if (key === "r") decideDraft(false);
    else if (key === "o") setVerdict("OK", e.shiftKey);
    else if (key === "n") setVerdict("NG", e.shiftKey);
    else if ((key === "Delete" || key === "Backspace") && state.selected) remove(state.selected);
    else if (key === "Escape") select(null);
    else if (key === "Tab") cycleSelection(e.shiftKey ? -1 : 1);
    else if (key === "k" && state.selected)
      edit((item) =>
        records.keyTrack(
          item,
          /** @type {string} */ (state.selected),
          state.index,
          false,
          ctx.user.username,
        ),
      );
    else if (key === "h" && state.selected)
      edit((item) =>
        records.keyTrack(
          item,
          /** @type {string} */ (state.selected),
          state.index,
          true,
          ctx.user.username,
        ),
      );
    else if (key === "l") controller.autoRange();
    else if (key === "f") viewer.fit();
    else if (key === "c")
      setPalette(
        PALETTES[(PALETTES.findIndex((p) => p.name === viewer.paletteName) + 1) % PALETTES.length]
          .name,
      );
    else if (key === "[" || key === "]") {
      state.brushRadius = Math.max(
        0.5,
        Math.min(64, state.brushRadius * (key === "]" ? 1.25 : 0.8)),
      );
      viewer.draw();
    } else if (e.shiftKey && key === "ArrowUp") nudgeRange(0.05, 1);
    else if (e.shiftKey && key === "ArrowDown") nudgeRange(-0.05, 1);
    else if (e.shiftKey && key === "ArrowLeft") nudgeRange(0, 1 / 1.1);
    else if (e.shiftKey && key === "ArrowRight") nudgeRange(0, 1.1);
    else if (key === "ArrowLeft") goto(state.index - 1);
    else if (key === "ArrowRight") goto(state.index + 1);
    else if (key === "Home") goto(0);
    else if (key === "End") goto(info.frame_count - 1);
    else if (key === "PageDown") openNeighbour(1);
    else if (key === "PageUp") openNeighbour(-1);
    else handled = false;
    if (handled) e.preventDefault();
  }

  /** @param {KeyboardEvent} e */
  function onKeyUp(e) {
    if (interaction.keyup(e)) e.preventDefault();
  }

  /** @param {BeforeUnloadEvent} e */
  function onBeforeUnload(e) {
    if (saver.dirty || saver.inFlight) e.preventDefault();
  }

  // ---- start -------------------------------------------------------------------------------
  viewer.setFrame(first);
  viewer.autoRange();
  viewer.resize();
  readout.timing.textContent = `${first.width}×${first.height} · °C data ${dataMs.toFixed(0)} ms · paint ${viewer.paintMs.toFixed(1)} ms`;
  setTool(state.tool);
  refresh();
  preload();
  const plotResize = new ResizeObserver(() => refreshSoon());
  if (player) plotResize.observe(player.plot);
  canvas.addEventListener("pointerdown", () => (touches += 1));
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  window.addEventListener("beforeunload", onBeforeUnload);
  return () => {
    disposed = true;
    player?.stop();
    viewer.dispose();
    plotResize.disconnect();
    saver.flush();
    window.removeEventListener("keydown", onKeyDown);
    window.removeEventListener("keyup", onKeyUp);
    window.removeEventListener("beforeunload", onBeforeUnload);
  };
}
