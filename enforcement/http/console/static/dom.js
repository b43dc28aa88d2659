// Building the page: elements made with h(), text always set as text (never as HTML), so
// nothing a camera, a vendor or a user typed can become markup.
import { t } from './i18n.js';

// h('p', {class: 'x', i18n: <text key>, on: {click: fn}}, child, ...): children are nodes or text.
// `i18n` sets the text from the current language and marks the node (data-i18n), so the
// language toggle re-translates it in place; `i18nAria`, `i18nPlaceholder` likewise.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'on') {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (name === 'i18n') {
      el.dataset.i18n = value;
      el.textContent = t(value);
    } else if (name === 'i18nAria') {
      el.dataset.i18nAria = value;
      el.setAttribute('aria-label', t(value));
    } else if (name === 'i18nPlaceholder') {
      el.dataset.i18nPlaceholder = value;
      el.setAttribute('placeholder', t(value));
    } else if (name === 'class') {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

// Replace `el`'s content by `children` (nothing for null or false: a section left out).
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let fieldIds = 0;

// A labelled form field: the label's `for` names the control; `hint` is tied to it by
// aria-describedby. Returns the wrapper; the control is `wrapper.control`.
export function field(labelKey, control, hintKey) {
  control.id = control.id || `f${++fieldIds}`;
  const label = h('label', { for: control.id, i18n: labelKey });
  const wrap = h('div', { class: 'field' }, label, control);
  if (hintKey) {
    const hint = h('small', { id: `${control.id}-hint`, class: 'muted', i18n: hintKey });
    control.setAttribute('aria-describedby', hint.id);
    wrap.append(hint);
  }
  wrap.control = control;
  return wrap;
}

// A region for a form's errors: screen readers announce what is put in it.
export function errorBox() {
  return h('p', { class: 'error', role: 'alert', hidden: true });
}

// Show an API error in `box` (a message per known code, the server's detail otherwise), and
// move focus to the field it names when the form has one.
export function showError(box, err, form) {
  box.hidden = false;
  box.textContent = describe(err);
  const name = err && err.field;
  const control = name && form ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
  if (control) {
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  }
}

export function clearError(box, form) {
  box.hidden = true;
  box.textContent = '';
  if (form) form.querySelectorAll('[aria-invalid]').forEach((c) => c.removeAttribute('aria-invalid'));
}

export function describe(err) {
  if (!err || err.status === undefined) return t('error.network');
  const known = { 401: 'error.unauthorized', 403: 'error.forbidden', 429: 'error.locked' };
  if (err.status === 403 && err.code === 'csrf') return t('error.csrf');
  if (known[err.status]) return t(known[err.status]);
  if (err.status >= 500) return `${t('error.server')} (${err.detail || err.status})`;
  return err.detail || `HTTP ${err.status}`;
}

// A table from rows; columns: [{key: i18n key of the header, cell: row => node or text}].
export function table(columns, rows, captionKey) {
  return h(
    'table',
    {},
    captionKey ? h('caption', { i18n: captionKey }) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', i18n: c.key })))),
    h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((c) => h('td', {}, c.cell(row)))))),
  );
}

// A list of name/value pairs (an object's fields, as a vendor or the server gave them).
export function pairs(obj) {
  const dl = h('dl', { class: 'pairs' });
  for (const [name, value] of Object.entries(obj || {})) {
    dl.append(h('dt', {}, name), h('dd', {}, text(value)));
  }
  return dl;
}

export function text(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// A date-time (RFC 3339 text, or epoch seconds) as the console's language writes it, in the
// browser's time zone.
export function when(iso) {
  if (iso === null || iso === undefined || iso === '') return '—';
  const d = new Date(typeof iso === 'number' ? iso * 1000 : iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(document.documentElement.lang === 'en' ? 'en-GB' : 'it-IT');
}

// An evidence reference: a vendor's picture URL becomes a link (opened without our referrer
// or a handle on this window); anything else (an event id) is shown as text.
export function evidence(ref) {
  if (!ref) return h('span', { class: 'muted', i18n: 'evidence.none' });
  if (/^https?:\/\//i.test(ref)) {
    return h('a', { href: ref, target: '_blank', rel: 'noopener noreferrer', i18n: 'evidence.open' });
  }
  return h('code', {}, ref);
}

// Announce a short message in the page's live region.
export function announce(message) {
  const status = document.getElementById('status');
  status.textContent = '';
  // A new text node on the next frame, so the same message twice is announced twice.
  requestAnimationFrame(() => {
    status.textContent = message;
  });
}

// The page heading, focusable so that navigation can move focus to it.
export function heading(key) {
  return h('h1', { tabindex: '-1', i18n: key });
}
