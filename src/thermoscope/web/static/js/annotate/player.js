/**
 * The sequence player: play / pause, a frame slider with keyframe marks, the frame's time,
 * and the plot of the selected track.
 * @module annotate/player
 */

import { h } from "../dom.js";

export class Player {
  /**
   * @param {object} options
   * @param {number} options.frameCount
   * @param {number[] | null} options.timestamps seconds since the first frame, per frame
   * @param {(frame: number) => void} options.onSeek
   * @param {(frame: number) => boolean} options.ready whether a frame's data is loaded
   */
  constructor({ frameCount, timestamps, onSeek, ready }) {
    this.frameCount = frameCount;
    this.timestamps = timestamps;
    this.onSeek = onSeek;
    this.ready = ready;
    this.index = 0;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    this.button = h(
      "button",
      {
        type: "button",
        class: "play",
        title: "Play / pause (Space)",
        onclick: () => this.toggle(),
      },
      "▶",
    );
    this.slider = /** @type {HTMLInputElement} */ (
      h("input", {
        type: "range",
        min: 0,
        max: frameCount - 1,
        step: 1,
        value: 0,
        name: "frame",
        "aria-label": "Frame",
        oninput: (e) => this.onSeek(Number(e.target.value)),
      })
    );
    this.marks = h("div", { class: "marks", "aria-hidden": "true" });
    this.label = h("span", { class: "frame-label" });
    this.plot = h("div", { class: "plot-host" });
    this.element = h(
      "div",
      { class: "player" },
      h(
        "div",
        { class: "player-controls" },
        this.button,
        h("div", { class: "slider" }, this.slider, this.marks),
        this.label,
      ),
      this.plot,
    );
    this.show(0);
  }

  /**
   * Position on the time axis of a frame: seconds when the item has timestamps, else the index.
   * @param {number} frame
   * @returns {number}
   */
  timeOf(frame) {
    return this.timestamps ? this.timestamps[frame] : frame;
  }

  /**
   * Show `frame` as the current one.
   * @param {number} frame
   */
  show(frame) {
    this.index = frame;
    this.slider.value = String(frame);
    const time = this.timestamps ? ` · ${this.timestamps[frame].toFixed(2)} s` : "";
    this.label.textContent = `${frame + 1} / ${this.frameCount}${time}`;
  }

  /**
   * Mark the keyframes of the selected track on the slider.
   * @param {number[]} frames
   */
  setMarks(frames) {
    const span = Math.max(1, this.frameCount - 1);
    this.marks.replaceChildren(
      ...frames.map((f) => h("span", { class: "mark", style: `left:${(f / span) * 100}%` })),
    );
  }

  /** @returns {boolean} */
  get playing() {
    return this.timer !== undefined;
  }

  /** Start or stop playback (looping), at the recording's pace when known, else 10 frames/s. */
  toggle() {
    if (this.playing) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.button.textContent = "▶";
      return;
    }
    const steps = this.timestamps
      ? this.timestamps
          .slice(1)
          .map((t, i) => t - this.timestamps[i])
          .filter((d) => d > 0)
      : [];
    const interval = steps.length
      ? Math.min(1000, Math.max(33, (steps.sort((a, b) => a - b)[steps.length >> 1] ?? 0.1) * 1000))
      : 100;
    this.button.textContent = "❚❚";
    this.timer = setInterval(() => {
      const next = (this.index + 1) % this.frameCount;
      if (this.ready(next)) this.onSeek(next);
    }, interval);
  }

  /** Stop playback. */
  stop() {
    if (this.playing) this.toggle();
  }
}
