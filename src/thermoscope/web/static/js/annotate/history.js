/**
 * The item being edited with its undo / redo history. Every change works on a copy, so the
 * states kept for undo are never touched again.
 * @module annotate/history
 */

/** Undo steps kept. */
const DEPTH = 200;

export class History {
  /**
   * @param {any} item the item dict as loaded
   * @param {(item: any) => void} onChange called after every change, undo and redo
   */
  constructor(item, onChange) {
    this.item = item;
    this.onChange = onChange;
    /** @type {any[]} */
    this.undoStack = [];
    /** @type {any[]} */
    this.redoStack = [];
  }

  /**
   * Apply an edit to a copy of the item; the edit may return false to make no change.
   * @param {(item: any) => (boolean | void)} edit
   * @returns {boolean} whether the item changed
   */
  apply(edit) {
    const next = structuredClone(this.item);
    if (edit(next) === false) return false;
    if (JSON.stringify(next) === JSON.stringify(this.item)) return false;
    this.undoStack.push(this.item);
    if (this.undoStack.length > DEPTH) this.undoStack.shift();
    this.redoStack = [];
    this.item = next;
    this.onChange(next);
    return true;
  }

  /** @returns {boolean} whether there was something to undo */
  undo() {
    const previous = this.undoStack.pop();
    if (!previous) return false;
    this.redoStack.push(this.item);
    this.item = previous;
    this.onChange(previous);
    return true;
  }

  /** @returns {boolean} whether there was something to redo */
  redo() {
    const next = this.redoStack.pop();
    if (!next) return false;
    this.undoStack.push(this.item);
    this.item = next;
    this.onChange(next);
    return true;
  }

  /**
   * Start over from an item read from the server (history cleared; `onChange` not called).
   * @param {any} item
   */
  reset(item) {
    this.item = item;
    this.undoStack = [];
    this.redoStack = [];
  }
}
