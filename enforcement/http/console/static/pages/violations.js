// Confirmed violations (the fines office): a period's list, a page at a time, and the whole
// period as CSV (every page fetched and joined, one header).
import * as api from '../api.js';
import { announce, clearError, errorBox, evidence, field, h, heading, put, showError, table, when } from '../dom.js';
import { t } from '../i18n.js';

const PAGE = 200;
const CSV_PAGE = 5000;

function daysAgo(n) {
  const d = new Date(Date.now() - n * 86400e3);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function render(root) {
  const from = h('input', { name: 'from', type: 'date', value: daysAgo(7) });
  const to = h('input', { name: 'to', type: 'date', value: daysAgo(-1) });
  const box = errorBox();
  const form = h(
    'form',
    { class: 'card row', role: 'search' },
    field('violations.from', from),
    field('violations.to', to, 'violations.to.hint'),
    h('button', { type: 'submit', i18n: 'violations.show' }),
    h('button', { type: 'button', id: 'violations-csv', i18n: 'violations.csv', on: { click: exportCsv } }),
    box,
  );
  const out = h('section', { id: 'violations-result' });
  const more = h('button', { type: 'button', class: 'link', i18n: 'more', hidden: true, on: { click: () => load(true) } });
  let rows = [];
  let cursor = null;

  function period() {
    const query = new URLSearchParams();
    if (from.value) query.set('from', from.value);
    if (to.value) query.set('to', to.value);
    return query;
  }

  async function load(append) {
    clearError(box, form);
    const query = period();
    query.set('limit', String(PAGE));
    if (append && cursor) query.set('cursor', cursor);
    try {
      const page = await api.get(`/v1/violations?${query}`);
      rows = append ? rows.concat(page.violations) : page.violations;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      put(out, rows.length ? results(rows) : h('p', { class: 'muted', i18n: 'violations.none' }));
      announce(t('violations.found', { n: rows.length }));
    } catch (err) {
      showError(box, err, form);
    }
  }

  async function exportCsv() {
    clearError(box, form);
    const parts = [];
    let next = '0';
    try {
      while (next !== null) {
        const query = period();
        query.set('format', 'csv');
        query.set('limit', String(CSV_PAGE));
        query.set('cursor', next);
        const response = await api.request('GET', `/v1/violations?${query}`, { accept: 'text/csv' });
        if (!response.ok) {
          let body = null;
          try {
            body = await response.json();
          } catch {
            body = null;
          }
          throw new api.ApiError(response.status, body);
        }
        const csv = await response.text();
        // Each page starts with the header line: keep the first page's only.
        parts.push(parts.length ? csv.slice(csv.indexOf('\n') + 1) : csv);
        next = response.headers.get('X-Next-Cursor');
      }
    } catch (err) {
      showError(box, err, form);
      return;
    }
    const url = URL.createObjectURL(new Blob(parts, { type: 'text/csv;charset=utf-8' }));
    const link = h('a', { href: url, download: `violations-${from.value || 'all'}-${to.value || 'now'}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    announce(t('violations.exported'));
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    load(false);
  });
  root.append(heading('violations.title'), form, out, more);
  load(false);
}

function results(rows) {
  return table(
    [
      { key: 'col.day', cell: (v) => v.day },
      { key: 'col.plate', cell: (v) => h('strong', {}, v.plate) },
      { key: 'col.zone', cell: (v) => v.zone },
      { key: 'col.first', cell: (v) => when(v.first_ts) },
      { key: 'col.gate', cell: (v) => v.gate },
      { key: 'col.camera', cell: (v) => v.camera },
      { key: 'col.reason', cell: (v) => h('span', { i18n: `why.${v.reason}` }) },
      { key: 'col.transits', cell: (v) => String((v.transit_ids || []).length || 1) },
      { key: 'col.evidence', cell: (v) => evidence(v.evidence) },
    ],
    rows,
    'violations.results',
  );
}

export default { id: 'violations', title: 'violations.title', roles: ['operator', 'admin'], render };
