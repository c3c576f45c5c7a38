/**
 * Three-way merge of an annotated item after an edit conflict: `base` is the item this page
 * last saved (or loaded), `mine` what it holds now, `theirs` what the server holds.
 *
 * Records are matched by id (verdicts by the frame they judge: an item holds one per frame and
 * one for the whole item). A record changed on one side only takes that side's version
 * (added, edited or deleted); a record changed on both sides the same way is kept once. What
 * both sides changed differently is a conflict: their version stays, and for annotations,
 * tracks and tolerances mine is kept beside it as a copy with a new id, so both show; for a
 * verdict, or where one side deleted what the other changed, the conflict says so and the page
 * offers the choice.
 * @module annotate/merge
 */

import { newId } from "./records.js";

/** Kinds of records matched by id (both versions of a conflict can be kept). */
const BY_ID = ["annotations", "tracks", "tolerances"];

/**
 * One record both sides changed differently.
 * @typedef {object} Conflict
 * @property {"annotations" | "tracks" | "tolerances" | "verdicts"} kind
 * @property {"both-changed" | "deleted-here" | "deleted-there"} what
 * @property {string} label the record's label, name or verdict, for people
 * @property {string | null} theirsId id of their version in the merged item (null: none)
 * @property {string | null} mineId id of my version in the merged item (null: none)
 * @property {any} mine my version (to put back when the user chooses it)
 */

/**
 * JSON with sorted keys, so equal records compare equal whatever their key order.
 * @param {any} value
 * @returns {string}
 */
export function stable(value) {
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(value[k])}`)
      .join(",")}}`;
  return JSON.stringify(value) ?? "null";
}

/**
 * @param {any} a
 * @param {any} b
 * @returns {boolean}
 */
function same(a, b) {
  return a === b || (a !== undefined && b !== undefined && stable(a) === stable(b));
}

/**
 * @param {any} record
 * @returns {string}
 */
function nameOf(record) {
  return String(record.label ?? record.name ?? record.verdict ?? record.id);
}

/**
 * Merge the records of one kind.
 * @param {string} kind
 * @param {any[]} base
 * @param {any[]} mine
 * @param {any[]} theirs
 * @param {(r: any) => string} keyOf
 * @param {Conflict[]} conflicts (appended to)
 * @returns {any[]}
 */
function mergeKind(kind, base, mine, theirs, keyOf, conflicts) {
  const b = new Map(base.map((r) => [keyOf(r), r]));
  const m = new Map(mine.map((r) => [keyOf(r), r]));
  const t = new Map(theirs.map((r) => [keyOf(r), r]));
  const keys = [...new Set([...t.keys(), ...m.keys(), ...b.keys()])];
  const out = [];
  const copies = [];
  for (const key of keys) {
    const [rb, rm, rt] = [b.get(key), m.get(key), t.get(key)];
    if (same(rm, rb)) {
      if (rt) out.push(rt); // unchanged here: theirs (changed, kept or deleted there)
    } else if (same(rt, rb) || same(rm, rt)) {
      if (rm) out.push(rm); // changed here only (or the same way on both sides)
    } else if (!rm) {
      out.push(rt);
      conflicts.push({
        kind: /** @type {any} */ (kind),
        what: "deleted-here",
        label: nameOf(rt),
        theirsId: rt.id,
        mineId: null,
        mine: null,
      });
    } else if (!rt) {
      out.push(rm);
      conflicts.push({
        kind: /** @type {any} */ (kind),
        what: "deleted-there",
        label: nameOf(rm),
        theirsId: null,
        mineId: rm.id,
        mine: rm,
      });
    } else if (kind === "verdicts") {
      out.push(rt);
      conflicts.push({
        kind: "verdicts",
        what: "both-changed",
        label: `${rt.verdict} (theirs) / ${rm.verdict} (mine)`,
        theirsId: rt.id,
        mineId: null,
        mine: rm,
      });
    } else {
      out.push(rt);
      const copy = { ...structuredClone(rm), id: newId() };
      copies.push(copy);
      conflicts.push({
        kind: /** @type {any} */ (kind),
        what: "both-changed",
        label: nameOf(rm),
        theirsId: rt.id,
        mineId: copy.id,
        mine: copy,
      });
    }
  }
  return [...out, ...copies];
}

/**
 * The merged item and its conflicts.
 * @param {any} base
 * @param {any} mine
 * @param {any} theirs
 * @returns {{item: any, conflicts: Conflict[]}}
 */
export function mergeItems(base, mine, theirs) {
  /** @type {Conflict[]} */
  const conflicts = [];
  const item = structuredClone(theirs);
  for (const kind of BY_ID)
    item[kind] = mergeKind(
      kind,
      base[kind] ?? [],
      mine[kind] ?? [],
      theirs[kind] ?? [],
      (r) => r.id,
      conflicts,
    );
  item.verdicts = mergeKind(
    "verdicts",
    base.verdicts ?? [],
    mine.verdicts ?? [],
    theirs.verdicts ?? [],
    (v) => (v.frame === null ? "item" : `frame ${v.frame}`),
    conflicts,
  );
  if (!same(mine.metadata, base.metadata)) item.metadata = structuredClone(mine.metadata);
  return { item: structuredClone(item), conflicts };
}

/**
 * Resolve a conflict in `item` (changed in place): keep my version or theirs.
 * @param {any} item
 * @param {Conflict} conflict
 * @param {"mine" | "theirs"} keep
 */
export function resolve(item, conflict, keep) {
  const { kind } = conflict;
  const drop = keep === "mine" ? conflict.theirsId : conflict.mineId;
  if (drop) item[kind] = item[kind].filter((r) => r.id !== drop);
  if (keep === "mine" && conflict.mine && !item[kind].some((r) => r.id === conflict.mine.id))
    item[kind].push(structuredClone(conflict.mine));
}
