// Permits (admin): open one by number to see it, its periods and its history (who changed
// what, when and why); revoke with a reason, renew, or issue a new one. Writes send the
// revision read (If-Match): a change made meanwhile by someone else is refused, not lost.
import * as api from '../api.js';
import { announce, clearError, errorBox, field, h, heading, put, showError, table, text, when } from '../dom.js';
import { t } from '../i18n.js';

// datetime-local gives local wall time without an offset; the API wants an instant.
const instant = (value) => (value ? new Date(value).toISOString() : null);

function render(root) {
  const id = h('input', { name: 'permit_id', required: true, maxlength: '64', spellcheck: 'false' });
  const openBox = errorBox();
  const open = h(
    'form',
    { class: 'card row', role: 'search' },
    field('permits.id', id),
    h('button', { type: 'submit', i18n: 'permits.open' }),
    openBox,
  );
  const shown = h('section', { id: 'permit-detail', 'aria-live': 'polite' });

  async function show(permitId) {
    clearError(openBox, open);
    try {
      const permit = await api.get(`/v1/permits/${encodeURIComponent(permitId)}`);
      put(shown, ...detail(permit, () => show(permit.permit_id)));
    } catch (err) {
      put(shown);
      showError(openBox, err, open);
    }
  }

  open.addEventListener('submit', (event) => {
    event.preventDefault();
    show(id.value.trim());
  });
  root.append(heading('permits.title'), open, shown, issueForm(show));
}

function detail(permit, reload) {
  const plates = permit.plates.map((p) => (p.primary ? p.plate : `${p.plate} (${t('permits.secondary')})`));
  return [
    h('h2', {}, h('span', { i18n: 'permits.permit' }), ` ${permit.permit_id}`),
    h(
      'dl',
      { class: 'pairs' },
      h('dt', { i18n: 'col.type' }), h('dd', {}, permit.type),
      h('dt', { i18n: 'permits.source' }), h('dd', {}, permit.source),
      h('dt', { i18n: 'col.from' }), h('dd', {}, when(permit.valid_from)),
      h('dt', { i18n: 'col.to' }), h('dd', {}, permit.valid_to ? when(permit.valid_to) : h('span', { i18n: 'permits.unlimited' })),
      h('dt', { i18n: 'col.zones' }), h('dd', {}, permit.zones.length ? permit.zones.join(', ') : h('span', { i18n: 'permits.typezones' })),
      h('dt', { i18n: 'permits.plates' }), h('dd', {}, plates.join(', ')),
      h('dt', { i18n: 'permits.revision' }), h('dd', {}, String(permit.revision)),
    ),
    (permit.periods || []).length > 1
      ? table(
          [
            { key: 'col.from', cell: (p) => when(p.valid_from) },
            { key: 'col.to', cell: (p) => when(p.valid_to) },
          ],
          permit.periods,
          'permits.periods',
        )
      : null,
    changes(permit.changes || []),
    versions(permit.history || []),
    h('div', { class: 'split' }, revokeForm(permit, reload), renewForm(permit, reload)),
  ];
}

// Who changed the permit through the admin API, when, how and why (`changes`), then its
// earlier versions as the database kept them (`history`).
function changes(entries) {
  if (!entries.length) return h('p', { class: 'muted', i18n: 'permits.nochanges' });
  return table(
    [
      { key: 'col.at', cell: (e) => when(e.at) },
      { key: 'col.actor', cell: (e) => text(e.person || e.actor) },
      { key: 'col.action', cell: (e) => h('span', { i18n: `action.${e.action}` }) },
      { key: 'col.reason', cell: (e) => text(e.reason) },
      { key: 'permits.revision', cell: (e) => String(e.revision) },
    ],
    entries.slice().reverse(),
    'permits.changes',
  );
}

function versions(entries) {
  if (!entries.length) return null;
  return table(
    [
      { key: 'permits.revision', cell: (e) => String(e.revision) },
      { key: 'col.from', cell: (e) => when(e.valid_from) },
      { key: 'col.to', cell: (e) => when(e.valid_to) },
      { key: 'col.zones', cell: (e) => e.zones.join(', ') },
      { key: 'permits.plates', cell: (e) => e.plates.map((p) => p.plate).join(', ') },
    ],
    entries,
    'permits.history',
  );
}

function revokeForm(permit, reload) {
  const reason = h('input', { name: 'reason', required: true, maxlength: '500' });
  const at = h('input', { name: 'at', type: 'datetime-local' });
  const box = errorBox();
  const form = h(
    'form',
    { class: 'card', id: 'revoke', 'aria-labelledby': 'revoke-title' },
    h('h3', { id: 'revoke-title', i18n: 'permits.revoke' }),
    field('permits.revoke.reason', reason),
    field('permits.revoke.at', at, 'permits.revoke.at.hint'),
    box,
    h('button', { type: 'submit', class: 'danger', i18n: 'permits.revoke.submit' }),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError(box, form);
    const body = { reason: reason.value.trim() };
    if (at.value) body.at = instant(at.value);
    try {
      await api.post(`/v1/permits/${encodeURIComponent(permit.permit_id)}/revoke`, body, {
        headers: { 'If-Match': `"${permit.revision}"` },
      });
      announce(t('permits.revoked', { id: permit.permit_id }));
      await reload();
    } catch (err) {
      showError(box, err, form);
    }
  });
  return form;
}

function renewForm(permit, reload) {
  const to = h('input', { name: 'valid_to', type: 'datetime-local', required: true });
  const from = h('input', { name: 'valid_from', type: 'datetime-local' });
  const reason = h('input', { name: 'reason', maxlength: '500' });
  const box = errorBox();
  const form = h(
    'form',
    { class: 'card', id: 'renew', 'aria-labelledby': 'renew-title' },
    h('h3', { id: 'renew-title', i18n: 'permits.renew' }),
    field('permits.renew.to', to),
    field('permits.renew.from', from, 'permits.renew.from.hint'),
    field('permits.reason', reason, 'permits.reason.hint'),
    box,
    h('button', { type: 'submit', i18n: 'permits.renew.submit' }),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError(box, form);
    const body = { valid_to: instant(to.value) };
    if (from.value) body.valid_from = instant(from.value);
    if (reason.value.trim()) body.reason = reason.value.trim();
    try {
      await api.post(`/v1/permits/${encodeURIComponent(permit.permit_id)}/renew`, body, {
        headers: { 'If-Match': `"${permit.revision}"` },
      });
      announce(t('permits.renewed', { id: permit.permit_id }));
      await reload();
    } catch (err) {
      showError(box, err, form);
    }
  });
  return form;
}

function issueForm(show) {
  const id = h('input', { name: 'permit_id', required: true, maxlength: '64', spellcheck: 'false' });
  const type = h('input', { name: 'type', required: true, maxlength: '64' });
  const plates = h('input', { name: 'plates', required: true, spellcheck: 'false', autocapitalize: 'characters' });
  const zones = h('input', { name: 'zones' });
  const from = h('input', { name: 'valid_from', type: 'datetime-local', required: true });
  const to = h('input', { name: 'valid_to', type: 'datetime-local' });
  const source = h('input', { name: 'source', value: 'municipal' });
  const reason = h('input', { name: 'reason', maxlength: '500' });
  const box = errorBox();
  const form = h(
    'form',
    { class: 'card', id: 'issue', 'aria-labelledby': 'issue-title' },
    h('h2', { id: 'issue-title', i18n: 'permits.issue' }),
    h(
      'div',
      { class: 'grid' },
      field('permits.id', id),
      field('col.type', type),
      field('permits.plates', plates, 'permits.plates.hint'),
      field('col.zones', zones, 'permits.zones.hint'),
      field('col.from', from),
      field('col.to', to, 'permits.to.hint'),
      field('permits.source', source),
      field('permits.reason', reason, 'permits.reason.hint'),
    ),
    box,
    h('button', { type: 'submit', i18n: 'permits.issue.submit' }),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError(box, form);
    const list = (s) => s.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);
    // The first plate is the primary one (a CUDE badge has exactly one).
    const body = {
      permit_id: id.value.trim(),
      type: type.value.trim(),
      valid_from: instant(from.value),
      valid_to: instant(to.value),
      plates: list(plates.value.toUpperCase()).map((plate, i) => ({ plate, primary: i === 0 })),
      zones: list(zones.value),
      source: source.value.trim() || 'municipal',
    };
    if (reason.value.trim()) body.reason = reason.value.trim();
    try {
      const permit = await api.post('/v1/permits', body);
      announce(t('permits.issued', { id: permit.permit_id }));
      form.reset();
      await show(permit.permit_id);
    } catch (err) {
      // A field inside the plate list (plates[1].plate) is reported on the plates input.
      if (err.field && err.field.startsWith('plates')) err.field = 'plates';
      showError(box, err, form);
    }
  });
  return form;
}

export default { id: 'permits', title: 'permits.title', roles: ['admin'], render };
