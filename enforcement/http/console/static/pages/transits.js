// Transit search (operator): a plate on a day, or a gate over at most 24 hours, within
// retention, to answer a citizen who contests a fine or to check a camera. Audited like a
// plate lookup: a reason is required.
import * as api from '../api.js';
import { announce, clearError, errorBox, evidence, field, h, heading, put, showError, table, text, when } from '../dom.js';
import { t } from '../i18n.js';

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function render(root) {
  const byPlate = h('input', { type: 'radio', name: 'mode', value: 'plate', checked: true, id: 'mode-plate' });
  const byGate = h('input', { type: 'radio', name: 'mode', value: 'gate', id: 'mode-gate' });
  const plate = h('input', { name: 'plate', maxlength: '16', autocapitalize: 'characters', spellcheck: 'false' });
  const day = h('input', { name: 'day', type: 'date', value: today() });
  const gate = h('input', { name: 'gate', maxlength: '32' });
  const from = h('input', { name: 'from', type: 'datetime-local' });
  const to = h('input', { name: 'to', type: 'datetime-local' });
  const reason = h('input', { name: 'reason', required: true, maxlength: '500' });
  const box = errorBox();
  const plateFields = h('div', { class: 'row' }, field('transits.plate', plate), field('transits.day', day));
  const gateFields = h('div', { class: 'row', hidden: true }, field('transits.gate', gate), field('transits.from', from), field('transits.to', to));
  const out = h('section', { id: 'transits-result' });
  const mode = h(
    'fieldset',
    {},
    h('legend', { i18n: 'transits.mode' }),
    h('label', { for: 'mode-plate' }, byPlate, ' ', h('span', { i18n: 'transits.byplate' })),
    h('label', { for: 'mode-gate' }, byGate, ' ', h('span', { i18n: 'transits.bygate' })),
  );
  const form = h(
    'form',
    { class: 'card', role: 'search' },
    mode,
    plateFields,
    gateFields,
    field('transits.reason', reason, 'lookup.reason.hint'),
    box,
    h('button', { type: 'submit', i18n: 'transits.submit' }),
  );
  const flip = () => {
    plateFields.hidden = !byPlate.checked;
    gateFields.hidden = byPlate.checked;
  };
  byPlate.addEventListener('change', flip);
  byGate.addEventListener('change', flip);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError(box, form);
    const query = new URLSearchParams();
    if (byPlate.checked) {
      query.set('plate', plate.value.trim());
      query.set('day', day.value);
    } else {
      query.set('gate', gate.value.trim());
      if (from.value) query.set('from', new Date(from.value).toISOString());
      if (to.value) query.set('to', new Date(to.value).toISOString());
    }
    const sent = api.withReason(`/v1/transits/search?${query}`, reason.value.trim());
    try {
      const found = await api.get(sent.path, { headers: sent.headers });
      put(
        out,
        found.truncated ? h('p', { class: 'notice', i18n: 'transits.truncated' }) : null,
        results(found.transits),
        found.retained_from ? h('p', { class: 'muted' }, h('span', { i18n: 'transits.retained' }), ` ${when(found.retained_from)}`) : null,
      );
      announce(t('transits.found', { n: found.transits.length }));
    } catch (err) {
      put(out);
      showError(box, err, form);
    }
  });
  root.append(heading('transits.title'), form, out);
}

function results(transits) {
  if (!transits.length) return h('p', { class: 'muted', i18n: 'transits.none' });
  return table(
    [
      { key: 'col.at', cell: (r) => when(r.at ?? r.ts) },
      { key: 'col.plate', cell: (r) => h('strong', {}, text(r.plate)) },
      { key: 'col.raw', cell: (r) => h('code', {}, text(r.raw_plate ?? r.raw)) },
      { key: 'col.gate', cell: (r) => text(r.gate) },
      { key: 'col.camera', cell: (r) => text(r.camera) },
      { key: 'col.verdict', cell: (r) => h('span', { class: `verdict ${r.verdict}`, i18n: `verdict.${r.verdict}` }) },
      { key: 'col.reason', cell: (r) => h('span', { i18n: `why.${r.reason}` }) },
      { key: 'col.confidence', cell: (r) => (typeof r.confidence === 'number' ? `${Math.round(r.confidence * 100)} %` : '—') },
      { key: 'col.evidence', cell: (r) => evidence(r.evidence) },
    ],
    transits,
    'transits.results',
  );
}

export default { id: 'transits', title: 'transits.title', roles: ['operator', 'admin'], render };
