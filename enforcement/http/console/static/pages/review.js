// The review queue (operator): reads a person must look at, one at a time, decided by key:
// j/k next/previous, c confirm, d dismiss, e correct the plate (Enter sends it).
// The reason stays filled between items: an operator confirming a series types it once.
import * as api from '../api.js';
import { announce, clearError, errorBox, evidence, field, h, heading, pairs, put, showError, text, when } from '../dom.js';
import { t } from '../i18n.js';

function render(root) {
  let items = [];
  let selected = 0;
  let cursor = null;

  const gate = h('input', { name: 'gate', size: '8' });
  const camera = h('input', { name: 'camera', size: '12' });
  const why = h('input', { name: 'reason', size: '14' });
  const filterBox = errorBox();
  const filters = h(
    'form',
    { class: 'card row', role: 'search', 'aria-labelledby': 'review-filters' },
    h('h2', { id: 'review-filters', class: 'sr', i18n: 'review.filters' }),
    field('review.gate', gate),
    field('review.camera', camera),
    field('review.why', why),
    h('button', { type: 'submit', i18n: 'review.load' }),
    filterBox,
  );
  const list = h('ol', { class: 'queue', id: 'review-list', 'aria-labelledby': 'review-list-title' });
  const more = h('button', { type: 'button', class: 'link', i18n: 'more', hidden: true });
  const detail = h('section', { class: 'card detail', id: 'review-detail', 'aria-live': 'polite' });

  const reason = h('input', { name: 'decision_reason', maxlength: '500' });
  const plate = h('input', { name: 'plate', maxlength: '16', autocapitalize: 'characters', spellcheck: 'false' });
  const decideBox = errorBox();
  const button = (decision, key) =>
    h('button', {
      type: 'button',
      'data-decision': decision,
      'aria-keyshortcuts': key,
      on: { click: () => decide(decision) },
    }, h('span', { i18n: `review.${decision}` }), ' ', h('kbd', {}, key));
  const decisions = h(
    'form',
    { class: 'card', 'aria-labelledby': 'review-decide' },
    h('h2', { id: 'review-decide', i18n: 'review.decide' }),
    field('review.reason', reason, 'review.reason.hint'),
    field('review.plate', plate, 'review.plate.hint'),
    decideBox,
    h('div', { class: 'row' }, button('confirm', 'c'), button('dismiss', 'd'), button('correct', 'e')),
    h('p', { class: 'muted', i18n: 'review.keys' }),
  );
  decisions.addEventListener('submit', (event) => {
    event.preventDefault();
    decide(plate.value.trim() ? 'correct' : 'confirm');
  });
  plate.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      decide('correct');
    }
  });

  async function load(append) {
    clearError(filterBox, filters);
    const query = new URLSearchParams({ limit: '50' });
    if (gate.value.trim()) query.set('gate', gate.value.trim());
    if (camera.value.trim()) query.set('camera', camera.value.trim());
    if (why.value.trim()) query.set('reason', why.value.trim());
    if (append && cursor) query.set('cursor', cursor);
    try {
      const page = await api.get(`/v1/review?${query}`);
      items = append ? items.concat(page.items) : page.items;
      cursor = page.next_cursor;
      if (!append) selected = 0;
      draw();
      announce(t('review.loaded', { n: items.length }));
    } catch (err) {
      showError(filterBox, err, filters);
    }
  }

  function draw() {
    put(list,
      ...items.map((item, i) =>
        h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              class: 'item',
              'aria-current': i === selected ? 'true' : null,
              on: { click: () => select(i) },
            },
            h('strong', {}, item.plate || '?'),
            ` ${item.gate} · ${when(item.at)} · `,
            h('span', { i18n: `why.${item.reason}` }),
          ),
        ),
      ),
    );
    more.hidden = !cursor;
    showDetail();
  }

  function showDetail() {
    const item = items[selected];
    decisions.hidden = !item;
    if (!item) {
      put(detail, h('p', { class: 'muted', i18n: 'review.empty' }));
      return;
    }
    const confidence = item.confidence === null || item.confidence === undefined
      ? '—'
      : `${Math.round(item.confidence * 100)} %`;
    const alternatives = (item.alternatives || []).map((a) =>
      typeof a === 'object' && a !== null
        ? `${a.plate ?? text(a)}${a.confidence !== undefined ? ` (${Math.round(a.confidence * 100)} %)` : ''}`
        : String(a));
    put(detail,
      h('h2', { id: 'review-item' }, h('span', { i18n: 'review.read' }), ' ', h('span', { class: 'plate' }, item.plate || '?')),
      h(
        'dl',
        { class: 'pairs' },
        h('dt', { i18n: 'review.raw' }), h('dd', {}, h('code', {}, text(item.raw_plate))),
        h('dt', { i18n: 'review.confidence' }), h('dd', {}, confidence),
        h('dt', { i18n: 'review.alternatives' }), h('dd', {}, alternatives.join(', ') || '—'),
        h('dt', { i18n: 'review.why' }), h('dd', {}, h('span', { i18n: `why.${item.reason}` })),
        h('dt', { i18n: 'review.gate' }), h('dd', {}, text(item.gate)),
        h('dt', { i18n: 'review.camera' }), h('dd', {}, text(item.camera)),
        h('dt', { i18n: 'review.at' }), h('dd', {}, when(item.at)),
        h('dt', { i18n: 'review.evidence' }), h('dd', {}, evidence(item.evidence)),
        h('dt', { i18n: 'review.transit' }), h('dd', {}, h('code', {}, item.transit_id)),
        (item.earlier || []).length ? [h('dt', { i18n: 'review.earlier' }), h('dd', {}, item.earlier.join(', '))] : null,
        (item.withdrawn || []).length ? [h('dt', { i18n: 'review.withdrawn' }), h('dd', {}, item.withdrawn.join(', '))] : null,
      ),
      h('h3', { i18n: 'review.kept' }),
      Object.keys(item.kept || {}).length ? pairs(item.kept) : h('p', { class: 'muted', i18n: 'review.nokept' }),
    );
  }

  function select(i) {
    if (!items.length) return;
    selected = Math.max(0, Math.min(items.length - 1, i));
    draw();
    list.querySelector('[aria-current="true"]')?.focus();
  }

  async function decide(decision) {
    const item = items[selected];
    if (!item) return;
    clearError(decideBox, decisions);
    const body = { decision, reason: reason.value.trim() };
    if (!body.reason) {
      decideBox.hidden = false;
      decideBox.textContent = t('review.needreason');
      reason.setAttribute('aria-invalid', 'true');
      reason.focus();
      return;
    }
    if (decision === 'correct') {
      body.plate = plate.value.trim();
      if (!body.plate) {
        plate.focus();
        return;
      }
    }
    try {
      const out = await api.post(`/v1/review/${encodeURIComponent(item.transit_id)}`, body);
      const done = out.violation ? 'review.done.violation' : 'review.done';
      announce(t(done, { plate: item.plate, decision: t(`review.${decision}`) }));
    } catch (err) {
      if (err.status !== 409 && err.status !== 404) {
        showError(decideBox, err, decisions);
        return;
      }
      announce(t('review.gone', { plate: item.plate }));
    }
    plate.value = '';
    items.splice(selected, 1);
    selected = Math.min(selected, items.length - 1);
    draw();
    (list.querySelector('[aria-current="true"]') || detail).focus();
  }

  // Keys act on the page unless the person is typing: in a field, Escape leaves it.
  function onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const typing = event.target.closest && event.target.closest('input, textarea, select');
    if (typing) {
      if (event.key === 'Escape') event.target.blur();
      return;
    }
    const action = {
      j: () => select(selected + 1),
      k: () => select(selected - 1),
      c: () => decide('confirm'),
      d: () => decide('dismiss'),
      e: () => plate.focus(),
    }[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  }

  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    load(false);
  });
  more.addEventListener('click', () => load(true));
  document.addEventListener('keydown', onKey);
  detail.setAttribute('tabindex', '-1');
  root.append(
    heading('review.title'),
    filters,
    h(
      'div',
      { class: 'split' },
      h('section', { class: 'card' }, h('h2', { id: 'review-list-title', i18n: 'review.queue' }), list, more),
      h('div', {}, detail, decisions),
    ),
  );
  load(false);
  return () => document.removeEventListener('keydown', onKey);
}

export default { id: 'review', title: 'review.title', roles: ['operator', 'admin'], render };
