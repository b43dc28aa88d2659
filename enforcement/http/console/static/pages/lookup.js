// Plate lookup (police): permits of a plate and the verdict per zone, now or at an instant.
// Every lookup states a reason; the server records it in the audit trail before answering.
import * as api from '../api.js';
import { announce, clearError, errorBox, field, h, heading, put, showError, table, text, when } from '../dom.js';
import { t } from '../i18n.js';

function render(root) {
  const plate = h('input', { name: 'plate', required: true, autocapitalize: 'characters', spellcheck: 'false', maxlength: '16' });
  const reason = h('input', { name: 'reason', required: true, maxlength: '500' });
  const at = h('input', { name: 'at', type: 'datetime-local' });
  const box = errorBox();
  const out = h('section', { 'aria-live': 'polite', id: 'lookup-result' });
  const form = h(
    'form',
    { class: 'card' },
    field('lookup.plate', plate),
    field('lookup.reason', reason, 'lookup.reason.hint'),
    field('lookup.at', at, 'lookup.at.hint'),
    box,
    h('button', { type: 'submit', i18n: 'lookup.submit' }),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError(box, form);
    let path = `/v1/plates/${encodeURIComponent(plate.value.trim())}`;
    if (at.value) path += `?at=${encodeURIComponent(new Date(at.value).toISOString())}`;
    const sent = api.withReason(path, reason.value.trim());
    try {
      const view = await api.get(sent.path, { headers: sent.headers });
      put(out, ...result(view));
      announce(t('lookup.done', { plate: view.plate, n: view.permits.length }));
    } catch (err) {
      put(out);
      showError(box, err, form);
    }
  });
  root.append(heading('lookup.title'), form, out);
}

function result(view) {
  const verdicts = table(
    [
      { key: 'col.zone', cell: (z) => z.zone },
      { key: 'col.verdict', cell: (z) => h('span', { class: `verdict ${z.verdict}`, i18n: `verdict.${z.verdict}` }) },
      { key: 'col.reason', cell: (z) => z.reason },
      { key: 'col.permits', cell: (z) => z.permits.join(', ') || '—' },
    ],
    view.zones,
    'lookup.zones',
  );
  const permits = view.permits.length
    ? table(
        [
          { key: 'col.permit', cell: (p) => p.permit_id },
          { key: 'col.type', cell: (p) => `${p.type} · ${p.type_name}` },
          { key: 'col.status', cell: (p) => h('span', { i18n: `status.${p.status}` }) },
          { key: 'col.from', cell: (p) => when(p.valid_from) },
          { key: 'col.to', cell: (p) => when(p.valid_to) },
          { key: 'col.zones', cell: (p) => p.zones.join(', ') },
          { key: 'col.windows', cell: (p) => p.windows.join(', ') || '—' },
        ],
        view.permits,
        'lookup.permits',
      )
    : h('p', { class: 'muted', i18n: 'lookup.nopermits' });
  const near = view.near_matches.length
    ? h(
        'section',
        {},
        h('h3', { i18n: 'lookup.near' }),
        h('ul', {}, view.near_matches.map((m) => h('li', {}, `${m.plate}: ${text(m.permits.join(', '))}`))),
      )
    : null;
  return [
    h('h2', {}, view.plate),
    h('p', { class: 'muted' }, `${when(view.at)} · `, h('span', { i18n: 'lookup.revision' }), ` ${view.index_revision}`),
    verdicts,
    permits,
    near,
  ];
}

export default { id: 'lookup', title: 'lookup.title', roles: ['police', 'admin'], render };
