/**
 * Upload radiometric files to a project: one or many at a time, each with its progress, the
 * server's answer (new frame, already there, issues such as a truncated last frame) and a
 * clear error for a file the server cannot read.
 * @module views/upload
 */

import { getCsrfToken } from "../api.js";
import { fill, h } from "../dom.js";
import { loadProject, projectTabs } from "./common.js";

/** Roles that may upload (the server's ingest permission). */
export const UPLOAD_ROLES = new Set(["admin", "reviewer", "annotator"]);

/**
 * POST one file to the project's frames with upload progress (fetch cannot report it).
 * @param {number | string} pid
 * @param {File} file
 * @param {(fraction: number) => void} progress 0..1 of the bytes sent
 * @returns {Promise<{status: number, body: any}>}
 */
export function sendFile(pid, file, progress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/projects/${pid}/frames`);
    xhr.setRequestHeader("X-CSRF-Token", getCsrfToken());
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) progress(e.loaded / e.total);
    };
    xhr.onload = () => resolve({ status: xhr.status, body: xhr.response });
    xhr.onerror = () => resolve({ status: 0, body: { detail: "the connection failed" } });
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/**
 * The message of an error answer.
 * @param {{status: number, body: any}} answer
 * @returns {string}
 */
function errorText(answer) {
  const detail = answer.body?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
  return `the server answered ${answer.status}`;
}

/** @type {import("../main.js").View} */
export async function renderUpload(root, params, ctx) {
  const project = await loadProject(params.pid);
  ctx.setCrumbs([["Projects", "#/"], [project.name, `#/p/${project.id}`], ["Upload"]]);
  const head = h(
    "div",
    { class: "page-head" },
    h("h1", {}, project.name),
    projectTabs(project, "upload"),
  );
  if (!UPLOAD_ROLES.has(project.role)) {
    fill(root, head, h("div", { class: "empty" }, "Your role in this project cannot upload."));
    return;
  }
  const input = /** @type {HTMLInputElement} */ (
    h("input", { type: "file", name: "files", multiple: true })
  );
  const list = h("ul", { class: "upload-list" });
  const button = /** @type {HTMLButtonElement} */ (
    h("button", { type: "submit", class: "primary" }, "Upload")
  );
  const form = h(
    "form",
    {
      class: "panel upload-form",
      onsubmit: async (/** @type {SubmitEvent} */ event) => {
        event.preventDefault();
        const files = [...(input.files ?? [])];
        if (!files.length) return;
        button.disabled = true;
        await uploadAll(files);
        button.disabled = false;
        input.value = "";
      },
    },
    h(
      "p",
      { class: "muted" },
      "Radiometric files (FLIR R-JPEG, SEQ, CSQ, TIFF, NumPy, CSV …): one or several at once.",
    ),
    h("label", {}, "Files", input),
    h("div", { class: "form-actions" }, button),
  );
  fill(root, head, form, list);

  /** @param {File[]} files uploaded one after the other */
  async function uploadAll(files) {
    const rows = files.map((file) => {
      const bar = /** @type {HTMLProgressElement} */ (h("progress", { max: 1, value: 0 }));
      const status = h("span", { class: "upload-status muted" }, "waiting");
      const row = h(
        "li",
        { class: "upload-item", dataset: { name: file.name, state: "waiting" } },
        h("span", { class: "upload-name" }, file.name),
        bar,
        status,
      );
      list.append(row);
      return { file, row, bar, status };
    });
    for (const { file, row, bar, status } of rows) {
      row.dataset.state = "sending";
      status.textContent = "sending";
      const answer = await sendFile(project.id, file, (f) => (bar.value = f));
      bar.value = 1;
      if (answer.status === 200 || answer.status === 201) {
        const body = answer.body;
        row.dataset.state = "done";
        row.dataset.frameId = body.frame_id;
        fill(
          status,
          h(
            "a",
            { href: `#/f/${body.frame_id}` },
            answer.status === 201 ? "added" : "already there",
          ),
          ` · ${body.format} · ${body.width}×${body.height}`,
          body.frame_count > 1 ? ` · ${body.frame_count} frames` : "",
          body.issues?.length
            ? h("span", { class: "file-issues" }, ` · ${body.issues.join("; ")}`)
            : "",
        );
        status.className = "upload-status";
      } else {
        row.dataset.state = "error";
        status.className = "upload-status error";
        status.textContent = `Not added: ${errorText(answer)}`;
      }
    }
  }
}
