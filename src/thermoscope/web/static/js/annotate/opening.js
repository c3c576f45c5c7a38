/**
 * Which frame of a sequence to open first: not blindly frame 0 (a heating sequence starts cold
 * and shows nothing), but the first frame with a machine draft, else with anything annotated,
 * else the frame the inspection's findings are on; without any of these, the hottest frame.
 * @module annotate/opening
 */

import { isMachineDraft } from "./records.js";

/**
 * The frames a record is on: an annotation's frame, a track's keyframes, a verdict's frame.
 * @param {any} record
 * @returns {number[]}
 */
function framesOf(record) {
  if (Array.isArray(record.keyframes)) return record.keyframes.map((k) => k.frame);
  return typeof record.frame === "number" ? [record.frame] : [];
}

/**
 * The frame to open and why, or null when only the temperatures can tell (see `hottest`).
 * @param {any} item the annotated item dict
 * @param {any} info the frame's details (`findings`, `machine_findings`)
 * @returns {{frame: number, why: string} | null}
 */
export function openingFrame(item, info) {
  if (item.frame_count < 2) return { frame: 0, why: "single frame" };
  const all = [...item.annotations, ...item.tracks, ...item.verdicts];
  const first = (records) => {
    const frames = records.flatMap(framesOf);
    return frames.length ? Math.min(...frames) : null;
  };
  const draft = first(all.filter(isMachineDraft));
  if (draft !== null) return { frame: draft, why: "first machine draft" };
  const annotated = first(all);
  if (annotated !== null) return { frame: annotated, why: "first annotation" };
  for (const inspection of [info.findings, info.machine_findings]) {
    const frame = inspection?.frame;
    if (typeof frame === "number" && frame >= 0 && frame < item.frame_count)
      return { frame, why: "findings" };
  }
  return null;
}

/**
 * The index of the frame with the highest finite °C (0 when none has one).
 * @param {Map<number, {celsius: Float32Array}>} frames by index
 * @returns {number}
 */
export function hottest(frames) {
  let best = 0;
  let bestValue = -Infinity;
  for (const [index, frame] of frames) {
    let high = -Infinity;
    for (const v of frame.celsius) if (v > high) high = v;
    if (high > bestValue || (high === bestValue && index < best)) {
      best = index;
      bestValue = high;
    }
  }
  return best;
}
