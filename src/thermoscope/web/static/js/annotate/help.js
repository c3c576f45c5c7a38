/**
 * The keyboard shortcuts of the annotate view and their help dialog (`?`).
 * @module annotate/help
 */

import { fill, h } from "../dom.js";

/** Shortcut groups: title, then [keys, what]. */
export const SHORTCUTS = [
  [
    "Tools",
    [
      ["V", "select, move and reshape"],
      ["B", "box"],
      ["P", "polygon (click vertices; Enter, double-click or the first vertex closes)"],
      ["M", "brush mask (Shift + drag erases; [ ] brush size)"],
      ["X", "point"],
      ["1 – 9", "label of the next shape (relabels a shape you selected, not the one just drawn)"],
      ["T", "new shapes become tracks (sequences)"],
    ],
  ],
  [
    "Objects",
    [
      ["Tab / Shift + Tab", "next / previous object"],
      ["A", "accept the machine draft"],
      ["R", "reject the machine draft"],
      ["Delete", "remove the selection"],
      ["K", "keyframe the selected track here"],
      ["H", "the selected track leaves the picture here"],
      ["Esc", "cancel drawing, clear the selection"],
    ],
  ],
  [
    "Verdict and review",
    [
      ["O", "verdict OK"],
      ["N", "verdict NG (asks for the reason)"],
      ["Shift + O / N", "verdict of the current frame of a sequence"],
      ["Ctrl + Enter", "submit for review"],
    ],
  ],
  [
    "View",
    [
      ["Wheel", "zoom at the pointer"],
      ["Space + drag / middle drag", "pan"],
      ["Right drag", "level (up / down) and span (left / right)"],
      ["Shift + ↑ / ↓", "level warmer / colder"],
      ["Shift + ← / →", "span narrower / wider"],
      ["L", "automatic level and span (1st – 99th percentile)"],
      ["C", "next palette"],
      ["F", "fit the frame to the window"],
    ],
  ],
  [
    "Sequence and frames",
    [
      ["← / →", "previous / next frame of the sequence"],
      ["Home / End", "first / last frame"],
      ["Space (tap)", "play / pause"],
      ["PgUp / PgDn", "previous / next item of the list"],
    ],
  ],
  [
    "Editing",
    [
      ["Ctrl + Z", "undo"],
      ["Ctrl + Shift + Z", "redo (also Ctrl + Y)"],
      ["Ctrl + S", "save now (changes save by themselves)"],
      ["?", "this help"],
    ],
  ],
];

/**
 * Keys as `<kbd>` elements; separators and lower-case words (drag, tap) as text.
 * @param {string} keys
 * @returns {Array<string | HTMLElement>}
 */
function keyTokens(keys) {
  return keys
    .split(" ")
    .map((k) => (/^([+/–]|\(.*\)|[a-z].*)$/.test(k) ? ` ${k} ` : h("kbd", {}, k)));
}

/** Open the shortcut help as a modal dialog (Escape or the button closes it). */
export function showHelp() {
  const existing = document.querySelector("dialog.help");
  if (existing) return;
  const dialog = h("dialog", { class: "help", "aria-label": "Keyboard shortcuts" });
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  dialog.addEventListener("close", () => dialog.remove());
  fill(
    dialog,
    h(
      "div",
      { class: "help-head" },
      h("h2", {}, "Keyboard shortcuts"),
      h("button", { type: "button", class: "ghost", onclick: close }, "Close"),
    ),
    h(
      "div",
      { class: "help-grid" },
      SHORTCUTS.map(([title, rows]) =>
        h(
          "section",
          {},
          h("h3", {}, title),
          h(
            "dl",
            {},
            rows.map(([keys, what]) => [h("dt", {}, keyTokens(keys)), h("dd", {}, what)]),
          ),
        ),
      ),
    ),
  );
  document.body.append(dialog);
  dialog.showModal();
}
