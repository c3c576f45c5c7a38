/**
 * Dataset versions of a project: label and verdict counts, a button to freeze a new version,
 * export buttons per format with the background job's progress and the download.
 * @module views/datasets
 */

import * as api from "../api.js";
import { fill, h, promptText, timeText, toast } from "../dom.js";
import { loadProject, pager, projectTabs } from "./common.js";

const LIMIT = 20;
const POLL_MS = 400;

/**
 * Wait for a background job, showing its progress in `bar` and `note`.
 * @param {string} jobId
 * @param {HTMLProgressElement} bar
 * @param {HTMLElement} note
 * @param {() => boolean} alive false once the page is left
 * @returns {Promise<any>} the finished job
 */
async function followJob(jobId, bar, note, alive) {
  for (;;) {
    const job = await api.get(`/jobs/${jobId}`);
    bar.value = job.progress ?? 0;
    note.textContent = job.message || job.state;
    if (job.state === "done") return job;
    if (job.state === "failed") throw new Error(job.error || "the job failed");
    if (!alive()) return job;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * A counts table of a mapping (name → count), largest first.
 * @param {Record<string, number>} counts
 * @param {string} what column title
 * @returns {HTMLElement}
 */
function countTable(counts, what) {
  const rows = Object.entries(counts ?? {}).sort((a, b) => b[1] - a[1]);
  const top = Math.max(1, ...rows.map(([, n]) => n));
  return h(
    "table",
    { class: "table counts" },
    h(
      "thead",
      {},
      h("tr", {}, h("th", {}, what), h("th", { class: "num" }, "Count"), h("th", {}, "")),
    ),
    h(
      "tbody",
      {},
      rows.length
        ? rows.map(([name, n]) =>
            h(
              "tr",
              {},
              h("td", {}, name),
              h("td", { class: "num" }, String(n)),
              h(
                "td",
                { class: "bar-cell" },
                h("span", { class: "bar", style: `width:${(n / top) * 100}%` }),
              ),
            ),
          )
        : h("tr", {}, h("td", { colspan: 3, class: "muted" }, "none")),
    ),
  );
}

/** @type {import("../main.js").View} */
export async function renderDatasets(root, params, ctx) {
  const { pid } = params;
  const offset = Number(params.offset || 0);
  let alive = true;
  const [project, page, formats] = await Promise.all([
    loadProject(pid),
    api.get(`/projects/${pid}/dataset-versions${api.query({ offset, limit: LIMIT })}`),
    api.get("/export-formats"),
  ]);
  ctx.setCrumbs([["Projects", "#/"], [project.name, `#/p/${pid}`], ["Dataset versions"]]);
  const canWrite = project.role === "reviewer" || project.role === "admin";

  const progress = /** @type {HTMLProgressElement} */ (
    h("progress", { max: 1, value: 0, hidden: true })
  );
  const progressNote = h("span", { class: "muted small" });
  const createButton = h(
    "button",
    { type: "button", class: "primary", disabled: !canWrite, onclick: create },
    "New version",
  );
  const onlyAccepted = /** @type {HTMLInputElement} */ (
    h("input", { type: "checkbox", name: "only_accepted" })
  );

  fill(
    root,
    h("div", { class: "page-head" }, h("h1", {}, project.name), projectTabs(project, "datasets")),
    h(
      "div",
      { class: "toolbar" },
      createButton,
      h("label", { class: "inline" }, onlyAccepted, "accepted items only"),
      progress,
      progressNote,
    ),
    page.items.length
      ? page.items.map(versionCard)
      : h(
          "div",
          { class: "empty" },
          "No dataset version yet: freeze the annotated frames with “New version”.",
        ),
    page.total > LIMIT && pager(page, (o) => `#/p/${pid}/datasets?offset=${o}`),
  );

  /**
   * One version: counts and export buttons.
   * @param {any} v
   * @returns {HTMLElement}
   */
  function versionCard(v) {
    const stats = v.stats ?? {};
    const exportArea = h("div", { class: "exports" });
    return h(
      "article",
      { class: "card version", dataset: { versionId: v.id } },
      h(
        "div",
        { class: "row" },
        h("h2", {}, v.message || "Untitled version"),
        h("code", { class: "hash", title: v.content_hash }, v.content_hash.slice(0, 12)),
        h("span", { class: "muted small" }, `${v.created_by} · ${timeText(v.created_at)}`),
      ),
      h(
        "dl",
        { class: "facts inline-facts" },
        [
          ["Items", stats.items ?? v.item_count],
          ["Frames", stats.frames],
          ["Annotated", stats.annotated, "by people (or machine drafts a person took on)"],
          ["Machine drafts only", stats.machine_only, "left out: nobody took their drafts on"],
          ["OK", stats.verdicts?.OK],
          ["NG", stats.verdicts?.NG],
          ["No verdict", stats.verdicts?.none],
        ].map(([k, n, title]) => [
          h("dt", { title: title ?? null }, k),
          h("dd", {}, n === undefined ? "—" : String(n)),
        ]),
      ),
      h(
        "div",
        { class: "count-tables" },
        countTable(stats.labels, "Label (annotations)"),
        countTable(stats.items_per_label, "Label (items)"),
      ),
      h(
        "div",
        { class: "export-buttons" },
        h("span", { class: "muted small" }, "Export"),
        formats.items.map((f) =>
          h(
            "button",
            {
              type: "button",
              class: "small",
              title: f.description,
              disabled: !canWrite,
              dataset: { format: f.name },
              onclick: () => exportAs(v, f.name, exportArea),
            },
            f.name,
          ),
        ),
      ),
      exportArea,
    );
  }

  async function create() {
    const message = await promptText({
      title: "New dataset version",
      label: "Message (what changed)",
      confirm: "Create",
    });
    if (message === null) return;
    createButton.disabled = true;
    progress.hidden = false;
    try {
      const { job_id: jobId } = await api.post(`/projects/${pid}/dataset-versions`, {
        message,
        only_accepted: onlyAccepted.checked,
      });
      await followJob(jobId, progress, progressNote, () => alive);
      toast("Dataset version ready.");
      if (alive) ctx.reload();
    } catch (error) {
      toast(`Version failed: ${error.message}`, "error");
    } finally {
      createButton.disabled = false;
    }
  }

  /**
   * Export a version and offer the download when the job is done.
   * @param {any} version
   * @param {string} format
   * @param {HTMLElement} area
   */
  async function exportAs(version, format, area) {
    const bar = /** @type {HTMLProgressElement} */ (h("progress", { max: 1, value: 0 }));
    const note = h("span", { class: "muted small" }, "queued");
    const line = h(
      "div",
      { class: "export-job", dataset: { format } },
      h("span", { class: "format" }, format),
      bar,
      note,
    );
    area.prepend(line);
    try {
      const { job_id: jobId, export_id: exportId } = await api.post(
        `/dataset-versions/${version.id}/exports`,
        { format },
      );
      await followJob(jobId, bar, note, () => alive);
      const done = await api.get(`/exports/${exportId}`);
      const size = done.size_bytes ? ` · ${(done.size_bytes / 1024).toFixed(1)} KiB` : "";
      fill(
        line,
        h("span", { class: "format" }, format),
        h("span", { class: "badge status-accepted" }, "ready"),
        h(
          "a",
          {
            class: "button small primary download",
            href: api.href(done.download_url || `/exports/${exportId}/download`),
            download: "",
          },
          `Download${size}`,
        ),
      );
    } catch (error) {
      fill(
        line,
        h("span", { class: "format" }, format),
        h("span", { class: "badge verdict-NG" }, "failed"),
        h("span", { class: "small" }, error.message),
      );
    }
  }

  return () => {
    alive = false;
  };
}
