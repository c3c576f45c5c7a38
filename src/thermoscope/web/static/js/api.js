/**
 * The HTTP API client (`/api/v1`, see docs/api.md): session cookie plus the CSRF header on
 * every write, JSON in and out, errors as `ApiError` with the server's message.
 * @module api
 */

import { parseFrame } from "./thermal.js";

const PREFIX = "/api/v1";
const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** An HTTP error answer: `status`, the server's `detail` and the whole body. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} detail
   * @param {any} body
   */
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

let csrfToken = "";
/** @type {() => void} */
let onUnauthorized = () => {};

/**
 * Remember the CSRF token of the session (from login or `/auth/me`).
 * @param {string | null} token
 */
export function setCsrfToken(token) {
  csrfToken = token ?? "";
}

/**
 * The CSRF token of the session ("" when none), for requests made without `send`.
 * @returns {string}
 */
export function getCsrfToken() {
  return csrfToken;
}

/**
 * What to do when the server answers 401 (the session ended).
 * @param {() => void} handler
 */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * The message of an error body: `detail` as text (FastAPI lists for validation errors).
 * @param {any} body
 * @param {string} fallback
 * @returns {string}
 */
function detailOf(body, fallback) {
  const detail = body?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail))
    return detail.map((d) => `${(d.loc ?? []).join(".")}: ${d.msg}`).join("; ");
  return fallback;
}

/**
 * Send a request and return the raw response (throws `ApiError` on 4xx/5xx).
 * @param {string} method
 * @param {string} path below the prefix, with its query
 * @param {any} [body] JSON body
 * @returns {Promise<Response>}
 */
export async function send(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (WRITES.has(method) && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(PREFIX + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.ok) return response;
  const data = await response.json().catch(() => null);
  if (response.status === 401 && path !== "/auth/login") onUnauthorized();
  throw new ApiError(
    response.status,
    detailOf(data, `${response.status} ${response.statusText}`),
    data,
  );
}

/**
 * A JSON request; resolves to the parsed body (null for 204).
 * @param {string} method
 * @param {string} path
 * @param {any} [body]
 * @returns {Promise<any>}
 */
export async function request(method, path, body) {
  const response = await send(method, path, body);
  return response.status === 204 ? null : response.json();
}

/** @param {string} path @returns {Promise<any>} */
export const get = (path) => request("GET", path);
/** @param {string} path @param {any} [body] @returns {Promise<any>} */
export const post = (path, body) => request("POST", path, body ?? {});
/** @param {string} path @param {any} body @returns {Promise<any>} */
export const put = (path, body) => request("PUT", path, body);

/**
 * A query string of the defined, non-empty values.
 * @param {Record<string, string | number | undefined | null>} params
 * @returns {string}
 */
export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return pairs.length ? `?${new URLSearchParams(pairs.map(([k, v]) => [k, String(v)]))}` : "";
}

/**
 * The °C of one frame of an item.
 * @param {string} frameId
 * @param {number} index 0-based frame of the sequence
 * @returns {Promise<import("./thermal.js").Frame>}
 */
export async function celsius(frameId, index) {
  const response = await send(
    "GET",
    `/frames/${encodeURIComponent(frameId)}/celsius?frame=${index}`,
  );
  const width = Number(response.headers.get("X-Width"));
  const height = Number(response.headers.get("X-Height"));
  return parseFrame(await response.arrayBuffer(), width, height);
}

/**
 * The URL of a download below the prefix (for links).
 * @param {string} path
 * @returns {string}
 */
export function href(path) {
  return path.startsWith("/api/") ? path : PREFIX + path;
}
