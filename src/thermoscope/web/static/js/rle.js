/**
 * COCO run-length encoding of binary masks, as `thermoscope.annotations.rle`: column-major
 * runs starting with a (possibly empty) run of zeros, and the compressed string form that
 * pycocotools writes.
 * @module rle
 */

/**
 * Column-major run lengths of a row-major mask.
 * @param {Uint8Array} mask `height * width` bytes, non-zero = inside, row-major
 * @param {number} height
 * @param {number} width
 * @returns {number[]}
 */
export function encode(mask, height, width) {
  const runs = [];
  let current = 0;
  let run = 0;
  for (let c = 0; c < width; c += 1) {
    for (let i = c; i < height * width; i += width) {
      const bit = mask[i] ? 1 : 0;
      if (bit !== current) {
        runs.push(run);
        run = 0;
        current = bit;
      }
      run += 1;
    }
  }
  runs.push(run);
  return runs;
}

/**
 * The row-major mask of column-major run lengths.
 * @param {number[]} counts
 * @param {number} height
 * @param {number} width
 * @returns {Uint8Array}
 */
export function decode(counts, height, width) {
  const out = new Uint8Array(height * width);
  let pos = 0;
  counts.forEach((run, k) => {
    if (k % 2 === 1) {
      for (let j = pos; j < pos + run; j += 1) {
        out[(j % height) * width + Math.floor(j / height)] = 1;
      }
    }
    pos += run;
  });
  return out;
}

/**
 * The compressed COCO string of run lengths.
 * @param {number[]} counts
 * @returns {string}
 */
export function toString(counts) {
  let out = "";
  counts.forEach((count, i) => {
    let x = count - (i > 2 ? counts[i - 2] : 0);
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5;
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out += String.fromCharCode(c + 48);
    }
  });
  return out;
}

/**
 * Run lengths of a compressed COCO string.
 * @param {string} text
 * @returns {number[]}
 */
export function fromString(text) {
  const counts = [];
  let pos = 0;
  while (pos < text.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (pos >= text.length) throw new Error(`RLE string ends inside a count at ${pos}`);
      const c = text.charCodeAt(pos) - 48;
      if (c < 0 || c >= 64) throw new Error(`RLE string: invalid character at ${pos}`);
      x |= (c & 0x1f) << (5 * k);
      more = Boolean(c & 0x20);
      pos += 1;
      k += 1;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}
