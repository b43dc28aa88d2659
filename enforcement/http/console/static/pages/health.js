// Health: this replica's readiness (/readyz: index revision and age, feeds, spool, follow-up,
// audit trail, warnings), every replica's (/v1/replicas, operators), and the cameras
// (/v1/cameras/health, operators), alarms first.
import * as api from '../api.js';
import { announce, describe, h, heading, put, table, text, when } from '../dom.js';
import { t } from '../i18n.js';

const REFRESH_MS = 15_000;

function render(root, session) {
  const ready = h('section', { class: 'card', id: 'health-ready', 'aria-labelledby': 'health-ready-title' });
  const reps = h('section', { class: 'card', id: 'health-replicas', 'aria-labelledby': 'health-replicas-title' });
  const cams = h('section', { class: 'card', id: 'health-cameras', 'aria-labelledby': 'health-cameras-title' });
  const refresh = h('button', { type: 'button', i18n: 'health.refresh', on: { click: () => load(true) } });
  const seeCameras = ['operator', 'admin'].includes(session.role);

  async function load(say) {
    await Promise.all([readiness(ready), seeCameras ? replicas(reps) : null, seeCameras ? cameras(cams) : null]);
    if (say) announce(t('health.refreshed'));
  }

  root.append(heading('health.title'), h('p', {}, refresh), ready, seeCameras ? reps : null, seeCameras ? cams : null);
  load(false);
  const timer = setInterval(() => load(false), REFRESH_MS);
  const relabel = () => load(false); // texts with figures in them are rebuilt
  window.addEventListener('varco:language', relabel);
  return () => {
    clearInterval(timer);
    window.removeEventListener('varco:language', relabel);
  };
}

async function readiness(section) {
  let body;
  try {
    // 503 is an answer here (not ready, with the details), not a failure.
    const response = await api.request('GET', '/readyz');
    body = await response.json();
  } catch (err) {
    put(section, h('p', { class: 'error', role: 'alert' }, describe(err)));
    return;
  }
  const flag = body.ready
    ? h('p', { class: 'ok', id: 'ready-flag' }, '● ', h('span', { i18n: 'health.ready' }))
    : h('p', { class: 'bad', id: 'ready-flag' }, '● ', h('span', { i18n: 'health.notready' }), `: ${text(body.reason)}`);
  const log = body.transit_log || {};
  const spool = log.spool_max_bytes ? `${mib(log.spool_bytes)} / ${mib(log.spool_max_bytes)}` : '—';
  const sources = Object.entries(body.sources || {}).map(([name, s]) => ({ name, ...s }));
  put(section,
    h('h2', { id: 'health-ready-title', i18n: 'health.replica' }),
    flag,
    (body.warnings || []).length
      ? h('ul', { class: 'warnings', 'aria-label': t('health.warnings') }, body.warnings.map((w) => h('li', {}, w)))
      : null,
    h(
      'dl',
      { class: 'pairs' },
      h('dt', { i18n: 'health.revision' }), h('dd', { id: 'index-revision' }, text(body.index_revision)),
      h('dt', { i18n: 'health.built' }), h('dd', {}, `${when(body.index_built_at)} (${age(body.index_age_s)})`),
      h('dt', { i18n: 'health.lag' }), h('dd', {}, age(body.freshness_lag_s)),
      h('dt', { i18n: 'health.permits' }), h('dd', {}, `${text(body.permits)} · ${text(body.plates)} `, h('span', { i18n: 'health.plates' })),
      h('dt', { i18n: 'health.redis' }), h('dd', {}, redis(body.redis)),
      h('dt', { i18n: 'health.log' }), h('dd', {}, text(log.target), ' · ', h('span', { i18n: 'health.spool' }), ` ${spool}`, log.last_error ? ` · ${log.last_error}` : ''),
      h('dt', { i18n: 'health.audit' }), h('dd', {}, audit(body.audit)),
      h('dt', { i18n: 'health.worker' }), h('dd', {}, text(body.worker_pid)),
    ),
    h('h3', { i18n: 'health.feeds' }),
    sources.length
      ? table(
          [
            { key: 'col.feed', cell: (s) => s.name },
            { key: 'col.age', cell: (s) => h('span', { class: s.age_s === null || s.age_s > s.max_age_s ? 'bad' : '' }, age(s.age_s)) },
            { key: 'col.maxage', cell: (s) => age(s.max_age_s) },
            { key: 'col.permits', cell: (s) => text(s.permits) },
            { key: 'col.rejected', cell: (s) => text(s.rejected) },
            { key: 'col.error', cell: (s) => text(s.last_error) },
          ],
          sources,
        )
      : h('p', { class: 'muted', i18n: 'health.nofeeds' }),
    h('h3', { i18n: 'health.followup' }),
    body.followup ? followup(body.followup) : h('p', { class: 'muted', i18n: 'health.nofollowup' }),
  );
}

// Every serving process that wrote its status to Redis lately (this one included).
async function replicas(section) {
  const title = h('h2', { id: 'health-replicas-title', i18n: 'health.replicas' });
  let list;
  try {
    list = (await api.get('/v1/replicas')).replicas;
  } catch (err) {
    put(section, title, h('p', { class: 'error', role: 'alert' }, describe(err)));
    return;
  }
  put(section,
    title,
    list.length
      ? table(
          [
            { key: 'col.replica', cell: (r) => `${r.host}:${r.port} · ${r.pid}` },
            { key: 'col.state', cell: (r) => (r.ready ? h('span', { class: 'ok', i18n: 'health.ready' }) : h('span', { class: 'bad' }, h('span', { i18n: 'health.notready' }), `: ${text(r.reason)}`)) },
            { key: 'col.revision', cell: (r) => text(r.index_revision) },
            { key: 'col.age', cell: (r) => age(r.index_age_s) },
            { key: 'col.lag', cell: (r) => age(r.freshness_lag_s) },
            { key: 'col.spool', cell: (r) => mib(r.spool_bytes) },
            { key: 'col.updated', cell: (r) => when(r.updated_at) },
          ],
          list,
        )
      : h('p', { class: 'muted', i18n: 'health.noreplicas' }),
  );
}

async function cameras(section) {
  const title = h('h2', { id: 'health-cameras-title', i18n: 'health.cameras' });
  let list;
  try {
    list = (await api.get('/v1/cameras/health')).cameras;
  } catch (err) {
    put(section, title, h('p', { class: 'error', role: 'alert' }, describe(err)));
    return;
  }
  // Alarms first, then by camera id.
  list.sort((a, b) => Number(!a.alarm) - Number(!b.alarm) || String(a.camera).localeCompare(b.camera));
  const alarms = list.filter((c) => c.alarm).length;
  put(section,
    title,
    h('p', { class: alarms ? 'bad' : 'ok', id: 'camera-alarms' }, t('health.alarms', { n: alarms, total: list.length })),
    list.length
      ? table(
          [
            { key: 'col.camera', cell: (c) => c.camera },
            { key: 'col.gate', cell: (c) => text(c.gate) },
            { key: 'col.lastread', cell: (c) => when(c.last_read_at) },
            { key: 'col.reads', cell: (c) => text(c.reads_last_hour) },
            { key: 'col.unreadable', cell: (c) => (typeof c.unreadable_share === 'number' ? `${Math.round(c.unreadable_share * 100)} %` : '—') },
            { key: 'col.offset', cell: (c) => (typeof c.clock_offset_s === 'number' ? `${c.clock_offset_s.toFixed(1)} s` : '—') },
            { key: 'col.alarm', cell: (c) => (c.alarm ? h('strong', { class: 'bad' }, c.alarm) : h('span', { class: 'ok', i18n: 'health.noalarm' })) },
          ],
          list,
        )
      : h('p', { class: 'muted', i18n: 'health.nocameras' }),
  );
}

// The follow-up worker's counters (a name without a text shows as the server sends it).
function followup(counts) {
  const dl = h('dl', { class: 'pairs' });
  for (const [name, value] of Object.entries(counts)) {
    dl.append(h('dt', { i18n: `followup.${name}` }), h('dd', {}, text(value)));
  }
  return dl;
}

function redis(status) {
  if (!status) return '—';
  if (status.connected) return h('span', { class: 'ok', i18n: 'health.connected' });
  // Not yet connected and nothing failed: starting, or between reconnections; not an error.
  if (!status.last_error) return h('span', { i18n: 'health.connecting' });
  return h('span', { class: 'bad' }, h('span', { i18n: 'health.disconnected' }), `: ${text(status.last_error)}`);
}

// The audit trail is writable as of its last write (unknown before the first).
function audit(status) {
  if (!status) return '—';
  const state = status.writable === false
    ? h('span', { class: 'bad', i18n: 'health.notwritable' })
    : h('span', { i18n: status.writable ? 'health.writable' : 'health.unwritten' });
  return h('span', {}, `${status.backend} · `, state, ` · ${status.writes} / ${status.failures} `, h('span', { i18n: 'health.writes' }), status.last_error ? ` · ${status.last_error}` : '');
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

function mib(bytes) {
  return `${((bytes || 0) / 1048576).toFixed(1)} MiB`;
}

export default { id: 'health', title: 'health.title', roles: ['police', 'operator', 'admin'], render };
