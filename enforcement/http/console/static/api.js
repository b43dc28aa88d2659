// The JSON API with the session cookie (HttpOnly: this script never sees it) and, on every
// write, the session's CSRF token, kept in memory only: a reload asks GET /v1/session again.
let csrf = null;
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
    this.detail = body && body.detail;
    this.field = body && body.field;
  }
}

export function setCsrf(token) {
  csrf = token;
}

// Called when the server answers 401 to anything but the session itself: the session ended.
export function whenSignedOut(fn) {
  onSignedOut = fn;
}

// A header may carry only Latin-1 (fetch refuses more), and the server reads headers as
// UTF-8: a reason in plain ASCII travels in X-Reason (kept out of proxies' access logs),
// any other in the query string, which the server accepts as well.
export function withReason(path, reason) {
  if (/^[\x20-\x7e]*$/.test(reason)) return { path, headers: { 'X-Reason': reason } };
  const sep = path.includes('?') ? '&' : '?';
  return { path: `${path}${sep}reason=${encodeURIComponent(reason)}`, headers: {} };
}

export async function request(method, path, { body, headers = {}, accept = 'application/json' } = {}) {
  const sent = { Accept: accept, ...headers };
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrf) sent['X-CSRF-Token'] = csrf;
  const response = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
    redirect: 'error',
  });
  if (response.status === 401 && path !== '/v1/session') onSignedOut();
  return response;
}

// The parsed JSON of a successful answer; ApiError (status, code, detail, field) otherwise.
export async function json(method, path, options) {
  const response = await request(method, path, options);
  if (response.status === 204) return null;
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const get = (path, options) => json('GET', path, options);
export const post = (path, body, options = {}) => json('POST', path, { ...options, body });
