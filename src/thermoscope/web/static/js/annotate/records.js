/**
 * Edits of an annotated item (the `AnnotatedItem.to_dict()` layout of
 * `thermoscope.annotations.item`). Every function takes the item dict and mutates it in place;
 * the caller works on a copy (see `annotate/history.js`).
 * @module annotate/records
 */

import { shapeAt, withKeyframe } from "../tracks.js";

/**
 * A fresh record id: 32 random hex digits.
 * @returns {string}
 */
export function newId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
}

/**
 * The provenance of a record made now by `author`.
 * @param {string} author
 * @returns {object}
 */
export function humanProvenance(author) {
  return { author, model: "", model_version: "", score: null, created: new Date().toISOString() };
}

/** @returns {object} the review of a fresh draft */
export function draftReview() {
  return { state: "draft", reviewer: "", comment: "", updated: null };
}

/**
 * Whether a model made the record and no person has taken it on yet (a pre-annotation).
 * @param {any} record
 * @returns {boolean}
 */
export function isMachineDraft(record) {
  return Boolean(record.provenance?.model) && !record.provenance?.author;
}

/**
 * One thing drawn on a frame: an annotation on it, or a track visible on it.
 * @typedef {object} Visible
 * @property {"annotation" | "track"} kind
 * @property {any} record
 * @property {import("../shapes.js").Shape} shape on this frame
 * @property {boolean} keyframe a track with a keyframe on this frame (annotations: true)
 */

/**
 * The annotations and tracks visible on `frame`, in the item's order.
 * @param {any} item
 * @param {number} frame
 * @returns {Visible[]}
 */
export function visibleOn(item, frame) {
  /** @type {Visible[]} */
  const out = [];
  for (const record of item.annotations) {
    if (record.frame === frame)
      out.push({ kind: "annotation", record, shape: record.shape, keyframe: true });
  }
  for (const record of item.tracks) {
    const shape = shapeAt(record, frame);
    if (shape)
      out.push({
        kind: "track",
        record,
        shape,
        keyframe: record.keyframes.some((k) => k.frame === frame),
      });
  }
  return out;
}

/**
 * The annotation or track with this id.
 * @param {any} item
 * @param {string} id
 * @returns {{kind: "annotation" | "track", record: any} | null}
 */
export function findRecord(item, id) {
  const annotation = item.annotations.find((a) => a.id === id);
  if (annotation) return { kind: "annotation", record: annotation };
  const track = item.tracks.find((t) => t.id === id);
  return track ? { kind: "track", record: track } : null;
}

/**
 * Mark a record edited by a person: back to a fresh draft, and taken on by `author` when a
 * model made it (as `Reviewable.edit`).
 * @param {any} record
 * @param {string} author
 */
function touch(record, author) {
  record.review = draftReview();
  if (!record.provenance.author) record.provenance = { ...record.provenance, author };
}

/**
 * Add a shape: an annotation on `frame`, or with `track` a track keyed on `frame`.
 * @param {any} item
 * @param {object} spec
 * @param {string} spec.label
 * @param {Record<string, any>} spec.attributes
 * @param {number} spec.frame
 * @param {import("../shapes.js").Shape} spec.shape
 * @param {string} spec.author
 * @param {boolean} spec.track
 * @returns {string} the new record's id
 */
export function addShape(item, { label, attributes, frame, shape, author, track }) {
  const id = newId();
  const common = {
    id,
    label,
    attributes: { ...attributes },
    metadata: {},
    provenance: humanProvenance(author),
    review: draftReview(),
  };
  if (track) item.tracks.push({ ...common, keyframes: [{ frame, shape, outside: false }] });
  else item.annotations.push({ ...common, frame, shape });
  return id;
}

/**
 * Give a record a new shape on `frame` (a track gets a keyframe there).
 * @param {any} item
 * @param {string} id
 * @param {number} frame
 * @param {import("../shapes.js").Shape} shape
 * @param {string} author
 */
export function setShape(item, id, frame, shape, author) {
  const found = findRecord(item, id);
  if (!found) return;
  if (found.kind === "annotation") found.record.shape = shape;
  else
    found.record.keyframes = withKeyframe(found.record.keyframes, { frame, shape, outside: false });
  touch(found.record, author);
}

/**
 * Put a keyframe on `frame` with the track's current shape there; with `outside`, the object
 * leaves the picture from this frame on.
 * @param {any} item
 * @param {string} id a track
 * @param {number} frame
 * @param {boolean} outside
 * @param {string} author
 * @returns {boolean} whether a keyframe was set
 */
export function keyTrack(item, id, frame, outside, author) {
  const found = findRecord(item, id);
  if (found?.kind !== "track") return false;
  const track = found.record;
  const shape =
    shapeAt(track, frame) ?? [...track.keyframes].reverse().find((k) => k.frame <= frame)?.shape;
  if (!shape) return false;
  track.keyframes = withKeyframe(track.keyframes, { frame, shape, outside });
  touch(track, author);
  return true;
}

/**
 * Remove a track's keyframe on `frame` (a track keeps at least one).
 * @param {any} item
 * @param {string} id
 * @param {number} frame
 * @param {string} author
 */
export function removeKeyframe(item, id, frame, author) {
  const found = findRecord(item, id);
  if (found?.kind !== "track" || found.record.keyframes.length < 2) return;
  found.record.keyframes = found.record.keyframes.filter((k) => k.frame !== frame);
  touch(found.record, author);
}

/**
 * Change a record's label and attributes.
 * @param {any} item
 * @param {string} id
 * @param {string} label
 * @param {Record<string, any>} attributes
 * @param {string} author
 */
export function setLabel(item, id, label, attributes, author) {
  const found = findRecord(item, id);
  if (!found) return;
  found.record.label = label;
  found.record.attributes = attributes;
  touch(found.record, author);
}

/**
 * Remove an annotation or track.
 * @param {any} item
 * @param {string} id
 */
export function removeRecord(item, id) {
  item.annotations = item.annotations.filter((a) => a.id !== id);
  item.tracks = item.tracks.filter((t) => t.id !== id);
}

/**
 * Take on a machine draft: `author` confirms it (the model stays in its provenance).
 * @param {any} item
 * @param {string} id
 * @param {string} author
 */
export function acceptDraft(item, id, author) {
  const found = findRecord(item, id);
  if (found) touch(found.record, author);
}

/**
 * The verdict the item's OK/NG decision reads: the whole item's, else (single frames) frame 0's.
 * @param {any} item
 * @returns {any | undefined}
 */
export function itemVerdict(item) {
  const whole = item.verdicts.find((v) => v.frame === null);
  return whole ?? (item.frame_count === 1 ? item.verdicts.find((v) => v.frame === 0) : undefined);
}

/**
 * The verdict on one frame of a sequence.
 * @param {any} item
 * @param {number} frame
 * @returns {any | undefined}
 */
export function frameVerdict(item, frame) {
  return item.verdicts.find((v) => v.frame === frame);
}

/**
 * Set an OK / NG verdict by `author`: on the whole item (`frame` undefined: replaces the one
 * `itemVerdict` reads) or on one frame.
 * @param {any} item
 * @param {"OK" | "NG"} verdict
 * @param {string} reason required for NG
 * @param {string} author
 * @param {number} [frame]
 */
export function setVerdict(item, verdict, reason, author, frame) {
  const current = frame === undefined ? itemVerdict(item) : frameVerdict(item, frame);
  const target = current
    ? current.frame
    : frame === undefined
      ? item.frame_count === 1
        ? 0
        : null
      : frame;
  const record = {
    id: current?.id ?? newId(),
    frame: target,
    verdict,
    reason,
    provenance: humanProvenance(author),
    review: draftReview(),
  };
  item.verdicts = [...item.verdicts.filter((v) => v !== current), record];
}
