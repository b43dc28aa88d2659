// The console's shell: sign-in, the navigation a role may use, the pages behind #/<page>,
// the language toggle and keyboard focus on each page change.
import * as api from './api.js';
import { announce, clearError, errorBox, field, h, heading, showError } from './dom.js';
import * as i18n from './i18n.js';
import health from './pages/health.js';
import lookup from './pages/lookup.js';
import permits from './pages/permits.js';
import review from './pages/review.js';
import transits from './pages/transits.js';
import violations from './pages/violations.js';

// Each page: {id, title (i18n key), roles, render(main, session) -> cleanup function or
// nothing}. The server checks every call's role; the navigation only hides what would fail.
const PAGES = [lookup, review, transits, violations, permits, health];
const main = document.getElementById('main');
let session = null; // {user, role, csrf_token, expires_at}
let cleanup = null;

function pagesFor(role) {
  return PAGES.filter((page) => page.roles.includes(role));
}

function renderNav() {
  const nav = document.getElementById('nav');
  nav.replaceChildren();
  nav.hidden = !session;
  document.getElementById('signout').hidden = !session;
  document.getElementById('whoami').textContent = session ? `${session.user} · ${session.role}` : '';
  if (!session) return;
  const current = location.hash.replace(/^#\//, '');
  const list = h('ul');
  for (const page of pagesFor(session.role)) {
    const link = h('a', { href: `#/${page.id}`, i18n: page.title });
    if (page.id === current) link.setAttribute('aria-current', 'page');
    list.append(h('li', {}, link));
  }
  nav.append(list);
}

function show(content, focus) {
  if (cleanup) cleanup();
  cleanup = null;
  document.getElementById('status').textContent = ''; // the last page's news is not this one's
  main.replaceChildren(...[content].flat());
  (focus || main.querySelector('h1') || main).focus();
}

function signInPage(messageKey) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const box = errorBox();
  const form = h(
    'form',
    { class: 'card narrow', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', tabindex: '-1', i18n: 'signin.title' }),
    messageKey ? h('p', { class: 'notice', i18n: messageKey }) : null,
    field('signin.username', user),
    field('signin.password', password),
    box,
    h('button', { type: 'submit', i18n: 'signin.submit' }),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError(box, form);
    try {
      const body = await api.post('/v1/session', { username: user.value.trim(), password: password.value });
      password.value = '';
      started(body);
    } catch (err) {
      password.value = '';
      showError(box, err);
      (err.status === 401 ? password : user).focus();
    }
  });
  session = null;
  api.setCsrf(null);
  renderNav();
  show(form, user);
}

function started(body) {
  session = body;
  api.setCsrf(body.csrf_token);
  const allowed = pagesFor(session.role);
  const wanted = location.hash.replace(/^#\//, '');
  if (!allowed.some((p) => p.id === wanted)) {
    location.hash = allowed.length ? `#/${allowed[0].id}` : '#/';
  }
  route();
}

function route() {
  if (!session) return;
  renderNav();
  const id = location.hash.replace(/^#\//, '');
  const page = pagesFor(session.role).find((p) => p.id === id);
  if (!page) {
    show([heading('notfound.title'), h('p', { i18n: 'notfound.body' })]);
    return;
  }
  document.title = `${i18n.t(page.title)} · Varco`;
  const container = h('div', { class: 'page', id: `page-${page.id}` });
  show(container);
  cleanup = page.render(container, session) || null;
  (container.querySelector('h1') || main).focus();
}

async function toggleLanguage() {
  const next = i18n.current() === 'it' ? 'en' : 'it';
  await i18n.use(next);
  i18n.translate();
  labelToggle();
  if (session) {
    const page = PAGES.find((p) => p.id === location.hash.replace(/^#\//, ''));
    if (page) document.title = `${i18n.t(page.title)} · Varco`;
  }
  window.dispatchEvent(new Event('varco:language'));
  announce(i18n.t('lang.changed'));
}

function labelToggle() {
  // The button names the other language in that language: someone who cannot read the
  // current one still finds it.
  const button = document.getElementById('lang');
  const other = i18n.current() === 'it' ? 'en' : 'it';
  button.textContent = other === 'en' ? 'English' : 'Italiano';
  button.setAttribute('lang', other);
}

async function signOut() {
  try {
    await api.json('DELETE', '/v1/session');
  } catch {
    // the session may be gone already: the page signs out either way
  }
  signInPage('signin.signedout');
}

async function boot() {
  await i18n.use(i18n.chosen());
  i18n.translate();
  labelToggle();
  document.getElementById('lang').addEventListener('click', toggleLanguage);
  document.getElementById('signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  api.whenSignedOut(() => {
    if (session) signInPage('signin.expired');
  });
  try {
    started(await api.get('/v1/session'));
  } catch {
    signInPage();
  }
}

boot();
