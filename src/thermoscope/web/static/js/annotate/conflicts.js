/**
 * The banner of an edit conflict: that both sides' changes were merged and, per record both
 * sides changed (see annotate/merge.js), a choice between mine and theirs.
 * @module annotate/conflicts
 */

import { fill, h } from "../dom.js";

/** Per kind of conflict: what happened, the "mine" button, the "theirs" button. */
const CHOICES = {
  "both-changed": ["changed on both sides", "Keep mine", "Keep theirs"],
  "deleted-here": ["you deleted it, they changed it", "Delete it", "Keep theirs"],
  "deleted-there": ["they deleted it, you changed it", "Keep mine", "Delete it"],
};

/**
 * Fill and show the banner.
 * @param {HTMLElement} banner
 * @param {import("./merge.js").Conflict[]} conflicts the ones not settled yet
 * @param {number | null} revision the server's revision merged with (null: shown again)
 * @param {(conflict: import("./merge.js").Conflict, keep: "mine" | "theirs") => void} choose
 */
export function showConflicts(banner, conflicts, revision, choose) {
  const head =
    revision === null
      ? "Merged with the other save."
      : `Someone else saved this frame meanwhile (revision ${revision}). ` +
        "Their changes and yours are merged; nothing was lost.";
  const entry = (c) => {
    const [what, mine, theirs] = CHOICES[c.what];
    const both = c.what === "both-changed" && c.mineId ? " (both shown, yours marked)" : "";
    return h(
      "li",
      { class: "conflict", dataset: { kind: c.kind, what: c.what } },
      h("span", {}, `${c.kind === "verdicts" ? "Verdict" : c.label}: ${what}${both}`),
      h(
        "button",
        { type: "button", class: "small keep-mine", onclick: () => choose(c, "mine") },
        mine,
      ),
      h(
        "button",
        { type: "button", class: "small keep-theirs", onclick: () => choose(c, "theirs") },
        theirs,
      ),
    );
  };
  fill(
    banner,
    h(
      "div",
      { class: "banner-text" },
      h("span", {}, head),
      conflicts.length ? h("ul", { class: "conflicts" }, conflicts.map(entry)) : null,
    ),
    h(
      "button",
      { type: "button", class: "ghost small", onclick: () => (banner.hidden = true) },
      "Dismiss",
    ),
  );
  banner.hidden = false;
}
