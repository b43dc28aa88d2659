// Italian first, English on request; the choice is remembered in this browser (localStorage).
// Texts live in i18n/<lang>.json; a key missing from English falls back to the Italian text.
const STORE = 'varco.lang';
export const LANGUAGES = ['it', 'en'];
let strings = {};
let italian = {};

async function fetchStrings(lang) {
  const response = await fetch(`/console/static/i18n/${lang}.json`, { cache: 'no-cache' });
  if (!response.ok) throw new Error(`i18n ${lang}: HTTP ${response.status}`);
  return response.json();
}

export function chosen() {
  try {
    const stored = localStorage.getItem(STORE);
    return LANGUAGES.includes(stored) ? stored : 'it';
  } catch {
    return 'it'; // storage disabled: Italian
  }
}

export async function use(lang) {
  if (!Object.keys(italian).length) italian = await fetchStrings('it');
  strings = lang === 'it' ? italian : await fetchStrings(lang);
  document.documentElement.lang = lang;
  try {
    localStorage.setItem(STORE, lang);
  } catch {
    // not remembered: the page still switches
  }
}

export function current() {
  return document.documentElement.lang || 'it';
}

// The text for `key`, with {name} placeholders filled from `vars`.
export function t(key, vars = {}) {
  // A value the server sends that has no text yet (a new reason code) shows as it came.
  const template = strings[key] ?? italian[key] ?? key.slice(key.indexOf('.') + 1);
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

// Re-translate every marked node under `root` (after a language change).
export function translate(root = document) {
  root.querySelectorAll('[data-i18n]').forEach((el) => {
    el.textContent = t(el.dataset.i18n);
  });
  root.querySelectorAll('[data-i18n-aria]').forEach((el) => {
    el.setAttribute('aria-label', t(el.dataset.i18nAria));
  });
  root.querySelectorAll('[data-i18n-placeholder]').forEach((el) => {
    el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder));
  });
}
