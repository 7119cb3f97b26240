// The live walk-through of a running migration: phase, copy progress, lag,
// events applied, the cutover window with Extend, warnings, per-namespace
// progress and the three-step cutover dialog. It polls x-progress every
// second and updates in place (no reload).

import * as api from './api.js';
import { h, replace, errorBox, table, statusBadge, badge, fmtBytes, fmtCount, fmtDuration, fmtTime, fmtAgo, announce, projectCrumbs } from './dom.js';

/** BEFORE_APPLY are the phases before change application starts: no lag yet. */
const BEFORE_APPLY = ['idle', 'starting', 'collection copy', 'index building'];
const FINISHED = ['COMPLETE', 'FAILED', 'EXPIRED'];

/**
 * lagView is the lag shown for a migration progress (x-progress): {value
 * (seconds or null for "—"), hint}. There is no lag before change
 * application starts, after the end, or while the host is lost (its last
 * value is frozen, never shown as live).
 */
export function lagView(mp) {
  const m = mp.migration; const p = mp.progress; const lost = m.hostLost;
  if (lost) return { value: null, hint: `Unknown while the migration host is lost${p ? ` (last reported ${fmtDuration(p.lagTimeSeconds)} at ${fmtTime(p.reportedAt)})` : ''}.` };
  if (FINISHED.includes(m.status)) return { value: null, hint: 'The migration has ended.' };
  if (!p || BEFORE_APPLY.includes(p.phase)) return { value: null, hint: 'Starts after the initial copy, when changes are applied.' };
  const v = m.lagTimeSeconds !== null && m.lagTimeSeconds !== undefined ? m.lagTimeSeconds : p.lagTimeSeconds;
  return { value: v, hint: 'How far the destination is behind the source.' };
}

/** title of the walk-through for a migration status. */
export function title(status, names) {
  const src = names.source ? `${names.source} ` : '';
  const to = names.destination ? `to ${names.destination}` : '';
  if (!to) return { COMPLETE: 'Migration complete', FAILED: 'Migration failed', EXPIRED: 'Migration expired' }[status] || 'Live migration';
  if (status === 'COMPLETE') return `Migrated ${src}${to}`;
  if (status === 'FAILED') return `Migration ${src ? `of ${src}` : ''}${to} failed`;
  if (status === 'EXPIRED') return `Migration ${src ? `of ${src}` : ''}${to} expired`;
  return `Migrating ${src}${to}`;
}

const POLL_MS = 1000;

/** labels of the migration (source, destination) remembered by the wizard. */
export function labels(id) {
  try { return JSON.parse(sessionStorage.getItem(`lm:${id}`) || 'null') || {}; } catch { return {}; }
}

export async function render(main, { groupId, migrationId }, page) {
  let mp;
  try {
    mp = await api.progress(groupId, migrationId);
  } catch (e) {
    replace(main, h('h1', {}, 'Live migration'), errorBox(e, 'open this live migration'));
    return;
  }
  const [project, org] = await api.project(groupId).then(async (p) => [p, await api.org(p.orgId).catch(() => null)], () => [null, null]);
  if (!page.alive()) return;
  const names = labels(migrationId);
  if (!names.destination) names.destination = mp.destinationClusterName;
  let dest = null; // the destination cluster (its redacted connection string), read once complete

  // Regions updated in place.
  const statusEl = h('div', { id: 'status-card' });
  const progressEl = h('div', { id: 'copy' });
  const statsEl = h('div', { class: 'grid', id: 'stats' });
  const windowEl = h('div', { id: 'cutover-window' });
  const warningsEl = h('div', { id: 'warnings' });
  const nsEl = h('div', { id: 'namespaces' });
  const eventsEl = h('div', { id: 'events' });
  const cutoverBtn = h('button', { type: 'button', class: 'primary', id: 'open-cutover', 'aria-describedby': 'cutover-why' }, 'Cut over…');
  const cutoverWhy = h('p', { class: 'hint', id: 'cutover-why' });
  const cutoverMsg = h('div', {});
  const dialog = cutoverDialog();
  const cancelBtn = h('button', { type: 'button', class: 'danger', id: 'open-cancel' }, 'Cancel migration…');
  const cancelMsg = h('div', { id: 'cancel-status' });
  const cancelDialog = h('dialog', { id: 'cancel-dialog', 'aria-labelledby': 'cx-h' },
    h('h2', { id: 'cx-h' }, 'Cancel this migration?'),
    h('p', {}, 'The migration host stops copying and syncing, and the migration ends as FAILED (“cancelled by you”). It cannot be resumed.'),
    h('p', {}, h('strong', {}, 'What it leaves behind: '), `${names.destination || 'the destination'} keeps the data copied so far and the migration's state in the `,
      h('code', {}, '__livemigrate'), ' database. Your source is not changed. To migrate again, start a new migration with “Clear existing data on the destination”.'),
    h('form', { method: 'dialog', class: 'actions' },
      h('button', { value: 'keep', autofocus: true }, 'Keep migrating'),
      h('button', { value: 'cancel', class: 'danger', id: 'confirm-cancel' }, 'Cancel migration')));
  cancelBtn.addEventListener('click', () => { cancelDialog.returnValue = ''; cancelDialog.showModal(); });
  cancelDialog.addEventListener('close', async () => {
    if (cancelDialog.returnValue !== 'cancel') return;
    cancelBtn.disabled = true;
    try {
      await api.cancel(groupId, migrationId);
      announce('Migration cancelled.');
      replace(cancelMsg);
      poll();
    } catch (e) {
      replace(cancelMsg, errorBox(e, 'cancel the migration'));
    } finally { cancelBtn.disabled = false; }
  });
  const connectEl = h('div', { id: 'connect' });
  const h1 = h('h1', {}, title(mp.migration.status, names));

  replace(main,
    projectCrumbs(org, project || { id: groupId, name: 'Project' }, `Migration ${migrationId}`),
    h1,
    h('p', { class: 'muted' }, 'Migration ', h('code', {}, migrationId), mp.migration.migrationHosts ? ` on migration host ${mp.migration.migrationHosts.join(', ')}` : ''),
    statusEl, connectEl,
    h('section', { class: 'card', 'aria-labelledby': 'copy-h' }, h('h2', { id: 'copy-h' }, 'Progress'), progressEl, statsEl),
    h('section', { class: 'card', 'aria-labelledby': 'cut-h' }, h('h2', { id: 'cut-h' }, 'Cutover'),
      windowEl, h('div', { class: 'actions' }, cutoverBtn, cancelBtn), cutoverWhy, cutoverMsg, cancelMsg, dialog, cancelDialog),
    warningsEl,
    h('section', { class: 'card', 'aria-labelledby': 'ns-h' }, h('h2', { id: 'ns-h' }, 'Collections'), nsEl),
    h('section', { class: 'card', 'aria-labelledby': 'ev-h' }, h('h2', { id: 'ev-h' }, 'Events'), eventsEl));

  let lastStatus = '';
  let lastReady = null;
  let lastLost = null;
  function update() {
    const m = mp.migration; const p = mp.progress;
    const done = FINISHED.includes(m.status);
    const t = title(m.status, names);
    if (h1.textContent !== t) { h1.textContent = t; document.title = `${t} · livemigrate`; }
    if (m.status === 'COMPLETE' && !dest) {
      dest = {};
      api.cluster(groupId, mp.destinationClusterName).then((c) => { dest = c; if (page.alive()) update(); }, () => { dest = { failed: true }; });
    }
    patch(connectEl, [m.status, dest && dest.connectionString], () => (m.status === 'COMPLETE' ? connectCard() : null));
    const cutting = !!mp.cutoverRequestedAt && m.status === 'WORKING';
    const lost = m.hostLost || null;
    // Status.
    patch(statusEl, [m.status, m.readyForCutover, cutting, p && p.phase, p && p.info, p && p.reportedAt, mp.stalled, mp.errorMessage, lost], () => h('section', { class: 'card', 'aria-labelledby': 'st-h' },
      h('h2', { id: 'st-h' }, 'Status'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', { id: 'migration-status', 'data-status': m.status }, statusBadge(m.status),
          cutting ? ' cutting over' : '', m.readyForCutover ? ' ' : '', m.readyForCutover ? badge('Ready for cutover', 'ok') : '',
          lost ? ' ' : '', lost ? badge('Migration host lost', 'bad') : ''),
        h('dt', {}, 'Phase'), h('dd', { id: 'phase' }, p ? p.phase : (m.status === 'NEW' ? 'waiting for the migration host to start' : '—')),
        p && p.info && p.info !== p.phase ? [h('dt', {}, lost ? 'Last known' : 'Now'), h('dd', { id: 'info' }, p.info, lost ? ' (before the host was lost)' : '')] : null,
        h('dt', {}, 'Started'), h('dd', {}, fmtTime(mp.createdAt)),
        h('dt', {}, 'Last report'), h('dd', {}, p ? fmtTime(p.reportedAt) : '—')),
      lost ? hostLostBanner(lost) : mp.stalled ? h('div', { class: 'alert warn', role: 'alert', 'data-stalled': '' },
        h('strong', {}, 'The migration host stopped reporting. '),
        'The migration is not failed: it resumes where it left off when the host is back. Check that livemigrate agent runs on ',
        (m.migrationHosts || []).join(', '), ' and reaches this control plane.') : null,
      m.status === 'COMPLETE' ? h('div', { class: 'alert ok', 'data-complete': '' },
        h('strong', {}, 'Migration complete. '), `Point your applications at ${names.destination || 'the destination cluster'}. `,
        h('a', { href: `#/groups/${groupId}/migrations/${migrationId}/report`, id: 'report-link' }, 'Open the report')) : null,
      m.status === 'FAILED' || m.status === 'EXPIRED' ? h('div', { class: 'alert error', role: 'alert' },
        h('strong', {}, m.status === 'EXPIRED' ? 'The cutover window lapsed. ' : 'The migration failed. '), mp.errorMessage || '', ' ',
        h('a', { href: `#/groups/${groupId}/migrations/${migrationId}/report`, id: 'report-link' }, 'See what happened and what to do')) : null));

    // Copy progress.
    if (p) {
      const total = Math.max(p.estimatedTotalBytes || 0, p.estimatedCopiedBytes || 0);
      const pct = total ? Math.min(100, Math.floor((100 * p.estimatedCopiedBytes) / total)) : (done || m.readyForCutover ? 100 : 0);
      replace(progressEl,
        h('label', { for: 'copy-bar' }, `Initial copy: ${pct}%`),
        h('progress', { id: 'copy-bar', max: 100, value: pct, 'aria-valuetext': `${pct}% copied` }),
        h('p', { id: 'copy-text' }, `${fmtBytes(p.estimatedCopiedBytes)} of ${fmtBytes(total)} · `,
          `${fmtCount(p.copiedDocuments)} of ${fmtCount(Math.max(p.estimatedTotalDocuments, p.copiedDocuments))} documents`));
    } else {
      replace(progressEl, h('p', {}, m.status === 'NEW' ? 'Waiting for the migration host to pick up the migration…' : 'No progress reported yet.'));
    }
    const lag = lagView(mp);
    const end = mp.completedAt || (done ? mp.updatedAt : null);
    replace(statsEl,
      stat('Lag time', h('span', { id: 'lag', 'data-stale': lost ? '' : null }, fmtDuration(lag.value)), lag.hint),
      stat('Events applied', h('span', { id: 'events-applied' }, fmtCount(p ? p.totalEventsApplied : 0)), 'Changes replayed on the destination since the copy began.'),
      bgView(p, done),
      stat(done ? 'Took' : 'Elapsed', h('span', { id: 'elapsed', 'data-since': mp.createdAt, 'data-ended': end },
        fmtDuration(((end ? new Date(end) : Date.now()) - new Date(mp.createdAt)) / 1000)), done ? `Ended ${fmtTime(end)}.` : ''));

    // Cutover window.
    const win = mp.cutoverWindow;
    patch(windowEl, [win && win.expiresAt, done, cutting, m.status, !!lost], () => windowContent(win, done, cutting, lost));
    cutoverBtn.hidden = done || cutting;
    cancelBtn.hidden = done || cutting;
    cutoverBtn.disabled = !m.readyForCutover;
    cutoverWhy.textContent = done || cutting ? '' : lost
      ? `Cut over is disabled: migration host ${lost.hostname} is lost. It unlocks when the host is back and the destination has caught up again.`
      : m.readyForCutover
        ? 'Ready: stop the writes to the source, then cut over.'
        : 'Cutover unlocks when the initial copy is done and the destination has caught up with the source.';

    // Warnings.
    const warnings = (p && p.warnings) || [];
    replace(warningsEl, warnings.length ? h('section', { class: 'alert warn', 'aria-labelledby': 'warn-h' },
      h('h2', { id: 'warn-h' }, 'Warnings'), h('ul', {}, warnings.map((w) => h('li', {}, w)))) : null);

    // Namespaces.
    const nss = (p && p.namespaces) || [];
    replace(nsEl, nss.length
      ? table('Copy progress per collection', [{ label: 'Collection' }, { label: 'Phase' }, { label: 'Documents', num: true }, { label: 'Bytes', num: true }, { label: 'Copied', num: true }],
        nss, (n) => {
          const pct = n.estimatedBytes ? Math.min(100, Math.floor((100 * n.copiedBytes) / n.estimatedBytes)) : (n.copiedDocuments >= n.estimatedDocuments ? 100 : 0);
          return h('tr', { 'data-ns': n.namespace }, h('th', { scope: 'row' }, n.namespace), h('td', {}, n.phase),
            h('td', { class: 'num' }, `${fmtCount(n.copiedDocuments)} / ${fmtCount(n.estimatedDocuments)}`),
            h('td', { class: 'num' }, `${fmtBytes(n.copiedBytes)} / ${fmtBytes(n.estimatedBytes)}`),
            h('td', { class: 'num' }, `${pct}%`));
        })
      : h('p', { class: 'muted' }, 'No collection reported yet.'));

    dialog.sync();
    if (m.status !== lastStatus && lastStatus) announce(`Migration status: ${m.status}.`);
    if (lastReady === false && m.readyForCutover) announce('The migration is ready for cutover.');
    if (lastLost !== null && !!lost !== lastLost) announce(lost ? `Migration host ${lost.hostname} is lost.` : 'The migration host is back.');
    lastStatus = m.status; lastReady = m.readyForCutover; lastLost = !!lost;
  }

  // connectCard: "Connect to your new cluster" once the migration is complete.
  function connectCard() {
    const cs = dest && dest.connectionString;
    return h('section', { class: 'card', 'aria-labelledby': 'conn-h', id: 'connect-card' },
      h('h2', { id: 'conn-h' }, 'Connect to your new cluster'),
      h('p', {}, `${names.destination || 'The destination'} now holds your data and the migration no longer syncs from the source.`),
      cs ? [h('p', {}, 'Connection string (credentials not shown):'), h('pre', { class: 'command', id: 'connection-string', tabindex: '0' }, cs)]
        : h('p', { class: 'muted' }, dest && dest.failed ? 'The connection string cannot be read with your role.' : 'Loading the connection string…'),
      h('ol', { id: 'next-steps' },
        h('li', {}, 'Point your applications at this connection string, with the user and password of your destination.'),
        h('li', {}, 'Resume writes there: the source is no longer kept in sync.'),
        h('li', {}, 'Read the ', h('a', { href: `#/groups/${groupId}/migrations/${migrationId}/report` }, 'migration report'), ' (verification and downtime).'),
        h('li', {}, 'Keep the source until you are satisfied, then retire it.')));
  }

  // hostLostBanner says the migration host is lost, since when, what it
  // means for the migration or its cutover, and what to do.
  function hostLostBanner(lost) {
    const host = lost.hostname;
    return h('div', { class: 'alert error', role: 'alert', id: 'host-lost', 'data-during-cutover': lost.duringCutover ? 'true' : 'false' },
      h('strong', {}, lost.duringCutover ? `Migration host ${host} was lost during the cutover. ` : `Migration host ${host} is lost. `),
      'Nothing heard from it since ', h('time', { datetime: lost.lastSeenAt }, fmtTime(lost.lastSeenAt)),
      ' (', h('span', { id: 'host-lost-ago', 'data-since': lost.lastSeenAt }, fmtAgo(lost.lastSeenAt)), '). ',
      lost.duringCutover
        ? 'The cutover is not lost: it resumes where it left off when the host is back.'
        : 'The migration is not failed: it resumes where it left off when the host is back. Cut over is disabled until then.',
      h('p', {}, 'What to do: restart ', h('code', {}, 'livemigrate agent'), ` on ${host} with the same link token, or check that ${host} can reach this control plane (network, firewall, the link token's access list).`));
  }

  // windowContent renders the cutover window region (rebuilt only when its
  // state changes, so the Extend button keeps keyboard focus).
  function windowContent(win, done, cutting, lost) {
    if (win && !done && !cutting) {
      const extend = h('button', { type: 'button', id: 'extend' }, 'Extend by 24 hours');
      const extMsg = h('span', { role: 'status', id: 'extend-status' });
      extend.addEventListener('click', async () => {
        extend.disabled = true;
        try {
          mp.cutoverWindow = await api.extend(groupId, migrationId);
          extMsg.textContent = `Extended: the window now closes at ${fmtTime(mp.cutoverWindow.expiresAt)}.`;
          closes.textContent = `Closes at ${fmtTime(mp.cutoverWindow.expiresAt)} (opened ${fmtTime(mp.cutoverWindow.startedAt)}).`;
          windowEl.dataset.key = JSON.stringify([mp.cutoverWindow.expiresAt, done, cutting, mp.migration.status, !!lost]);
          tick();
        } catch (e) {
          replace(extMsg, errorBox(e, 'extend the cutover window'));
        } finally { extend.disabled = false; }
      });
      const closes = h('p', { class: 'hint' }, `Closes at ${fmtTime(win.expiresAt)} (opened ${fmtTime(win.startedAt)}).`);
      return [
        h('p', {}, 'Cut over before the window closes, or the migration expires and stops syncing.'),
        h('div', { class: 'stat' }, h('span', { class: 'label' }, 'Time left to cut over'),
          h('span', { class: 'big', id: 'countdown', 'data-expires': win.expiresAt }, fmtDuration((new Date(win.expiresAt) - Date.now()) / 1000))),
        closes, h('div', { class: 'row' }, extend, extMsg)];
    }
    if (cutting && lost) return h('p', { id: 'cutting' }, `Cutover started at ${fmtTime(mp.cutoverRequestedAt)}. Migration host ${lost.hostname} was lost during the cutover: the cutover resumes where it left off when the host is back.`);
    if (cutting) return h('p', { id: 'cutting' }, `Cutover started at ${fmtTime(mp.cutoverRequestedAt)}: the migration host applies the last changes, verifies and finalizes.`);
    if (done) return h('p', {}, mp.migration.status === 'COMPLETE' ? 'The cutover is done.' : 'No cutover: the migration ended.');
    return h('p', {}, 'The cutover window opens when the migration is first ready (after the initial copy, when the lag is small). You then have 120 hours to cut over, and can extend.');
  }

  // patch rebuilds el only when key changed.
  function patch(el, key, build) {
    const k = JSON.stringify(key);
    if (el.dataset.key === k) return;
    el.dataset.key = k;
    replace(el, build());
  }

  // bgView is the continuous verifier's coverage while changes apply.
  function bgView(p, done) {
    const b = p && p.backgroundVerification;
    if (!b || done) return null;
    return stat('Verified in background', h('span', { id: 'background-verification', 'data-verified': b.namespacesVerified, 'data-namespaces': b.namespaces },
      `${fmtCount(b.namespacesVerified)}/${fmtCount(b.namespaces)} namespaces`),
    `Collections compared while changes apply (${fmtCount(b.documentsCompared)} documents so far); changed since, to recheck at cutover: ${fmtCount(b.documentsToRecheck || 0)} documents.`);
  }

  function stat(label, value, hint) {
    return h('div', { class: 'stat' }, h('span', { class: 'label' }, label), h('span', { class: 'big' }, value), hint ? h('span', { class: 'hint' }, hint) : null);
  }

  // tick updates the clocks between polls.
  function tick() {
    const cd = document.getElementById('countdown');
    if (cd && mp.cutoverWindow) {
      cd.textContent = fmtDuration((new Date(mp.cutoverWindow.expiresAt) - Date.now()) / 1000);
      cd.dataset.expires = mp.cutoverWindow.expiresAt;
    }
    const ago = document.getElementById('host-lost-ago');
    if (ago) ago.textContent = fmtAgo(ago.dataset.since);
    const el = document.getElementById('elapsed');
    if (el && !FINISHED.includes(mp.migration.status)) el.textContent = fmtDuration((Date.now() - new Date(mp.createdAt)) / 1000);
  }

  async function loadEvents() {
    try {
      const evs = await api.events(groupId, migrationId);
      if (!page.alive()) return;
      replace(eventsEl, h('ol', { class: 'log', reversed: true }, evs.slice().reverse().map((e) =>
        h('li', { 'data-event': e.type }, h('time', { datetime: e.createdAt }, fmtTime(e.createdAt)), ' — ', h('strong', {}, e.type), ': ', e.message))));
    } catch (e) {
      if (page.alive()) replace(eventsEl, errorBox(e, 'load the events'));
    }
  }

  // The three-step cutover dialog: stop writes → confirm → finalize.
  function cutoverDialog() {
    const d = h('dialog', { id: 'cutover-dialog', 'aria-labelledby': 'cd-h' });
    let step = 0; let requested = false;
    const stepsEl = h('ol', { class: 'steps', 'aria-label': 'Cutover steps' });
    const content = h('div', {});
    d.append(h('h2', { id: 'cd-h' }, 'Cut over'), stepsEl, content);
    const show = (n) => {
      step = n;
      replace(stepsEl, ['Stop writes', 'Confirm', 'Finalize'].map((s, i) => h('li', { 'aria-current': i === n ? 'step' : null, class: i < n ? 'done' : null }, s)));
      replace(content, [stopWrites, confirm, finalize][n]());
      const f = content.querySelector('input, button.primary, a.button');
      if (f) f.focus();
    };
    const close = h('button', { type: 'button', onclick: () => d.close() }, 'Close');
    function stopWrites() {
      const box = h('input', { type: 'checkbox', id: 'writes-stopped' });
      const next = h('button', { type: 'button', class: 'primary', id: 'cutover-next', disabled: true, onclick: () => show(1) }, 'Next');
      box.addEventListener('change', () => { next.disabled = !box.checked; });
      return [
        h('p', {}, `Stop every application write to the source${names.source ? ` ${names.source}` : ''}: stop the writers, or make the source read-only. `,
          'Writes made after this point are not migrated.'),
        h('label', { class: 'inline' }, box, 'All writes to the source are stopped'),
        h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => d.close() }, 'Cancel'), next)];
    }
    function confirm() {
      const m = mp.migration;
      const go = h('button', { type: 'button', class: 'primary', id: 'cutover-confirm', disabled: !m.readyForCutover }, 'Confirm cutover');
      const msg = h('div', {});
      go.addEventListener('click', async () => {
        go.disabled = true;
        try {
          await api.cutover(groupId, migrationId);
          requested = true;
          announce('Cutover started.');
          show(2);
          poll();
        } catch (e) {
          replace(msg, errorBox(e, 'start the cutover'));
          go.disabled = false;
        }
      });
      return [
        h('p', {}, 'The migration host applies the remaining changes, verifies the destination against the source and finalizes. This cannot be undone.'),
        h('dl', { class: 'facts' }, h('dt', {}, 'Lag time'), h('dd', { id: 'confirm-lag' }, fmtDuration(m.lagTimeSeconds)),
          h('dt', {}, 'Events applied'), h('dd', {}, fmtCount(mp.progress ? mp.progress.totalEventsApplied : 0))),
        h('p', { class: 'alert warn', id: 'not-ready', hidden: m.readyForCutover }, notReady()),
        msg,
        h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => show(0) }, 'Back'), go)];
    }
    function notReady() {
      const lost = mp.migration.hostLost;
      return lost ? `Not ready: migration host ${lost.hostname} is lost (nothing heard from it since ${fmtTime(lost.lastSeenAt)}).`
        : 'Not ready right now: wait until the destination has caught up.';
    }
    function finalize() {
      const m = mp.migration; const p = mp.progress;
      if (m.status === 'COMPLETE') {
        return [h('div', { class: 'alert ok', role: 'status', id: 'cutover-done' }, h('strong', {}, 'Cutover complete. '),
          `Point your applications at ${names.destination || 'the destination cluster'}.`),
        h('div', { class: 'actions' }, h('a', { class: 'button primary', href: `#/groups/${groupId}/migrations/${migrationId}/report`, id: 'dialog-report' }, 'Open the report'), close)];
      }
      if (m.status === 'FAILED' || m.status === 'EXPIRED') {
        return [h('div', { class: 'alert error', role: 'alert' }, h('strong', {}, 'The cutover failed. '), mp.errorMessage || ''),
          h('div', { class: 'actions' }, h('a', { class: 'button', href: `#/groups/${groupId}/migrations/${migrationId}/report` }, 'See what to do'), close)];
      }
      if (m.hostLost) {
        const lost = m.hostLost;
        return [h('div', { class: 'alert error', role: 'alert', id: 'finalize-host-lost' },
          h('strong', {}, `Migration host ${lost.hostname} was lost during the cutover. `),
          `Nothing heard from it since ${fmtTime(lost.lastSeenAt)}. The cutover resumes where it left off when the host is back: restart `,
          h('code', {}, 'livemigrate agent'), ` on ${lost.hostname} with the same link token, or check its network.`),
        h('div', { class: 'actions' }, close)];
      }
      return [h('p', { role: 'status', id: 'finalizing' }, 'Finalizing: ', p ? `${p.phase}${p.info ? ` — ${p.info}` : ''}` : 'waiting for the migration host…'),
        h('progress', { 'aria-label': 'Finalizing' }),
        h('div', { class: 'actions' }, close)];
    }
    cutoverBtn.addEventListener('click', () => { if (!mp.migration.readyForCutover) return; requested = false; show(0); d.showModal(); });
    d.sync = () => {
      if (!d.open) return;
      if (step === 2 || requested) { replace(content, finalize()); return; }
      if (step === 1) {
        const go = d.querySelector('#cutover-confirm');
        if (go && !go.matches(':focus')) go.disabled = !mp.migration.readyForCutover;
        const lag = d.querySelector('#confirm-lag');
        if (lag) lag.textContent = fmtDuration(mp.migration.lagTimeSeconds);
        const why = d.querySelector('#not-ready');
        if (why) { why.hidden = mp.migration.readyForCutover; why.textContent = notReady(); }
      }
    };
    return d;
  }

  let stopped = false;
  let inflight = false;
  async function poll() {
    if (inflight || stopped) return;
    inflight = true;
    try {
      const next = await api.progress(groupId, migrationId);
      if (!page.alive()) return;
      mp = next;
      update();
    } catch (e) {
      if (page.alive() && !(e instanceof api.ApiError && e.status === 401)) replace(cutoverMsg, errorBox(e, 'refresh the progress'));
    } finally { inflight = false; }
  }

  update();
  loadEvents();
  const timers = [
    setInterval(poll, POLL_MS),
    setInterval(tick, 1000),
    setInterval(loadEvents, 3000),
  ];
  return () => { stopped = true; timers.forEach(clearInterval); if (dialog.open) dialog.close(); if (cancelDialog.open) cancelDialog.close(); };
}
