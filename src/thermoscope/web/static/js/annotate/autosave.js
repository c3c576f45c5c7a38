/**
 * Autosave of a frame's annotations: a debounced `PUT /frames/{fid}/annotations` carrying the
 * revision the edits are based on. When someone else saved in between the server answers 409
 * with its current item; nothing is overwritten and the caller is told, with the item this page
 * last saved (the base of a three-way merge, see annotate/merge.js).
 * @module annotate/autosave
 */

import * as api from "../api.js";

/** @typedef {"saved" | "pending" | "saving" | "error" | "conflict"} SaveState */

export class Saver {
  /**
   * @param {object} options
   * @param {string} options.frameId
   * @param {number} options.revision the revision of the item as loaded
   * @param {any} options.base the item as loaded
   * @param {() => any} options.current the item to save
   * @param {(state: SaveState, message: string) => void} options.onState
   * @param {(body: {detail: string, revision: number, item: any}, base: any) => void}
   *   options.onConflict `base`: the item as this page last saved or loaded it
   * @param {number} [options.delayMs] quiet time before saving
   */
  constructor({ frameId, revision, base, current, onState, onConflict, delayMs = 800 }) {
    this.frameId = frameId;
    this.revision = revision;
    /** the item as last saved or loaded (never changed in place: History copies) */
    this.base = base;
    this.current = current;
    this.onState = onState;
    this.onConflict = onConflict;
    this.delayMs = delayMs;
    this.dirty = false;
    /** @type {Promise<void> | null} */
    this.inFlight = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
  }

  /** The item changed: save it after a quiet moment. */
  changed() {
    this.dirty = true;
    this.onState("pending", "Unsaved changes");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), this.delayMs);
  }

  /**
   * Save now if anything is unsaved; resolves when the server has answered.
   * @returns {Promise<void>}
   */
  async flush() {
    clearTimeout(this.timer);
    if (this.inFlight) await this.inFlight;
    if (this.dirty) await this.save();
  }

  /**
   * Start over from a revision read from the server (nothing unsaved).
   * @param {number} revision
   * @param {any} item the item at that revision
   */
  reset(revision, item) {
    clearTimeout(this.timer);
    this.revision = revision;
    this.base = item;
    this.dirty = false;
  }

  /** @returns {Promise<void>} */
  save() {
    if (this.inFlight) return this.inFlight.then(() => (this.dirty ? this.save() : undefined));
    this.inFlight = this.send().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  async send() {
    this.dirty = false;
    this.onState("saving", "Saving…");
    const item = this.current();
    try {
      const body = await api.put(`/frames/${this.frameId}/annotations`, {
        item,
        revision: this.revision,
      });
      this.revision = body.revision;
      this.base = item;
      if (!this.dirty) this.onState("saved", `Saved · revision ${body.revision}`);
    } catch (error) {
      if (error.status === 409 && error.body?.item) {
        const base = this.base;
        this.reset(error.body.revision, error.body.item);
        this.onState("conflict", "Conflict: merged");
        this.onConflict(error.body, base);
        return;
      }
      this.dirty = true;
      this.onState("error", `Not saved: ${error.message}`);
      if (!error.status) this.timer = setTimeout(() => this.save(), 5000);
    }
  }
}
