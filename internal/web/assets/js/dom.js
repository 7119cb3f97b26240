// Small DOM and formatting helpers. Text is always set as text nodes, never
// parsed as HTML, so server data cannot inject markup.

import { ApiError } from './api.js';

/**
 * h builds an element: h('button', {class: 'primary', onclick: f}, 'Save').
 * Attributes starting with "on" are listeners; false/null attributes are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** replace empties el and appends children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** announce reads msg to screen-reader users through the polite live region. */
export function announce(msg) {
  const s = document.getElementById('status');
  s.textContent = '';
  setTimeout(() => { s.textContent = msg; }, 50);
}

let idSeq = 0;
/** uid returns a document-unique id for label/aria wiring. */
export const uid = (p) => `${p}-${++idSeq}`;

/** fmtBytes: 1536 → "1.5 KiB". */
export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** fmtCount: 1234567 → "1,234,567". */
export const fmtCount = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('en-US'));

/** fmtDuration: seconds → "4d 3h 2m 1s" (largest units first). */
export function fmtDuration(sec) {
  if (sec === null || sec === undefined) return '—';
  let s = Math.max(0, Math.round(sec));
  if (s < 60 && sec < 10 && sec % 1 !== 0) return `${Number(sec).toFixed(1)}s`;
  const d = Math.floor(s / 86400); s %= 86400;
  const hr = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  const parts = [];
  if (d) parts.push(`${d}d`);
  if (d || hr) parts.push(`${hr}h`);
  if (d || hr || m) parts.push(`${m}m`);
  parts.push(`${s}s`);
  return parts.join(' ');
}

/** fmtTime: RFC 3339 → local date and time. */
export function fmtTime(t) {
  if (!t) return '—';
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

/** fmtAgo: RFC 3339 → "12s ago" (the units of fmtDuration). */
export function fmtAgo(t) {
  if (!t) return '—';
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (s < 5) return 'just now';
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** badge renders a status pill; kind is ok, bad, warn or neutral. */
export const badge = (text, kind) => h('span', { class: `badge ${kind || 'neutral'}` }, text);

/** statusBadge renders a migration or validation status. */
export function statusBadge(status) {
  const kind = { COMPLETE: 'ok', SUCCESS: 'ok', PASSED: 'ok', WORKING: 'neutral', NEW: 'neutral', PENDING: 'neutral',
    FAILED: 'bad', EXPIRED: 'bad', WARNING: 'warn', SKIPPED: 'neutral' }[status];
  return badge(status, kind);
}

/**
 * errorBox explains an error: what happened and what to do. 401 is handled
 * globally (back to sign-in); 403 names the role needed.
 */
export function errorBox(err, action) {
  const what = action ? `Could not ${action}.` : 'Something went wrong.';
  let advice;
  if (err instanceof ApiError) {
    switch (err.status) {
      case 403:
        if (err.code === 'CSRF_TOKEN_INVALID') {
          advice = 'Your browser session is out of date. Reload the page and try again.';
        } else {
          return h('div', { class: 'alert error', role: 'alert', 'data-error': err.code || 'FORBIDDEN' },
            h('strong', {}, 'Permission denied. '), what, ' ',
            'This needs the Organization Owner role, or Project Owner of the destination project. ',
            'Ask an organization owner to grant it. ', h('span', { class: 'muted' }, `(${err.code}: ${err.detail})`));
        }
        break;
      case 404: advice = 'It does not exist, or you have no role that lets you see it.'; break;
      case 409: advice = 'The current state does not allow this; the page shows the latest state.'; break;
      case 0: advice = ''; break;
      default: advice = '';
    }
  }
  const detail = err instanceof ApiError ? `${err.detail}${err.code && err.status ? ` (${err.code})` : ''}` : String(err && err.message || err);
  return h('div', { class: 'alert error', role: 'alert', 'data-error': (err && err.code) || 'ERROR' },
    h('strong', {}, what), ' ', detail, advice ? h('p', { class: 'hint' }, advice) : null);
}

/** table renders rows with headers [{label, num}] and cells built by row(r). */
export function table(caption, headers, rows, row, attrs) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs || {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
      h('tbody', {}, rows.map((r) => labelCells(row(r), headers)))));
}

// labelCells names each cell after its column (data-label), which the
// narrow-screen layout shows in front of the value.
function labelCells(tr, headers) {
  Array.from(tr.children).forEach((cell, i) => { if (headers[i] && headers[i].label) cell.dataset.label = headers[i].label; });
  return tr;
}

/** field renders a labelled control with an optional hint and error slot. */
export function field(labelText, control, hint) {
  const id = control.id || (control.id = uid('f'));
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const errEl = h('p', { class: 'field-error', id: `${id}-err`, hidden: true });
  const described = [hintEl && hintEl.id, errEl.id].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', described);
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, labelText), control, hintEl, errEl);
  wrap.setError = (msg) => {
    errEl.hidden = !msg;
    errEl.textContent = msg || '';
    if (msg) control.setAttribute('aria-invalid', 'true'); else control.removeAttribute('aria-invalid');
  };
  return wrap;
}

/**
 * crumbs renders the breadcrumb trail every page shares:
 * Organizations / <org> / <project> / … ; items are [label, href] or a label.
 */
export function crumbs(...items) {
  const parts = [h('a', { href: '#/' }, 'Organizations')];
  for (const it of items) {
    if (!it) continue;
    parts.push(' / ');
    parts.push(Array.isArray(it) && it[1] ? h('a', { href: it[1] }, it[0]) : (Array.isArray(it) ? it[0] : it));
  }
  return h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, parts);
}

/** projectCrumbs: the trail of a destination project's pages. */
export const projectCrumbs = (org, project, ...rest) => crumbs(
  org ? [org.name, `#/orgs/${org.id}/live-migration`] : null,
  project ? [project.name, `#/groups/${project.id}`] : null, ...rest);

/** CHECK_TITLES are the titles of the migration host's validation checks. */
export const CHECK_TITLES = {
  'control-plane-connectivity': 'Migration host reaches the control plane',
  'source-tls': 'Source TLS',
  'source-connectivity': 'Source is reachable',
  'source-authentication': 'Source credentials',
  'destination-connectivity': 'Destination is reachable',
  'source-topology': 'Source topology',
  'mongodb-versions': 'MongoDB versions',
  'source-destination-distinct': 'Source and destination are different deployments',
  'source-user-roles': 'Source user roles',
  'source-auth-mechanisms': 'Source authentication mechanism',
  'change-capture': 'Change capture (oplog / change streams)',
  'database-statistics': 'Database statistics',
  'destination-disk': 'Destination disk space',
  'destination-other-migration': 'No other migration into the destination',
  'destination-namespaces': 'Destination has no conflicting collections',
  'destination-user': 'Migration host gets a destination user of its own',
};

/** checkTitle is a check's title, or its id when it has none. */
export const checkTitle = (name) => CHECK_TITLES[name] || name;

/** sortChecks lists failures first, then warnings, then the rest (stable). */
export function sortChecks(checks) {
  const rank = { FAILED: 0, WARNING: 1 };
  return checks.map((c, i) => [c, i]).sort((a, b) => ((rank[a[0].status] ?? 2) - (rank[b[0].status] ?? 2)) || a[1] - b[1]).map((x) => x[0]);
}

/** MIB is one mebibyte: oplog sizes (oplogSizeMB) are in MiB. */
export const MIB = 1048576;

/** versionProblem says why a source MongoDB version is not supported, or "" (6.0.17+, 7.0.13+, 8.0+). */
export function versionProblem(v) {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v || '');
  if (!m) return 'the version is unknown';
  const [maj, min, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (maj < 6) return `MongoDB ${v} is too old: live migration needs 6.0.17+, 7.0.13+ or 8.0+`;
  if (maj === 6 && min === 0 && patch < 17) return `MongoDB ${v} is older than 6.0.17: upgrade it`;
  if (maj === 7 && min === 0 && patch < 13) return `MongoDB ${v} is older than 7.0.13: upgrade it`;
  return '';
}
