// The report of a finished migration: what was synced and verified, the
// event history, and for a failure what happened and what to do.

import * as api from './api.js';
import { h, replace, errorBox, table, statusBadge, fmtBytes, fmtCount, fmtDuration, fmtTime, projectCrumbs } from './dom.js';
import { labels } from './walkthrough.js';

/** advice explains a migration's outcome: {title, what, todo, kind}. */
export function advice(mp, rep, names) {
  const m = mp.migration; const dest = names.destination || 'the destination cluster';
  const msg = mp.errorMessage || '';
  switch (m.status) {
    case 'COMPLETE':
      if (rep && rep.verification.status === 'FAILED') {
        return { kind: 'error', title: 'Migration finished, but verification found differences',
          what: rep.verification.message || 'Some documents differ between the source and the destination.',
          todo: `Keep your applications on the source: do not switch them to ${dest}. Look at the differing collections and example _ids below, then migrate again with “Clear existing data on the destination”.` };
      }
      return { kind: 'ok', title: 'Migration complete',
        what: rep && rep.verification.status === 'SKIPPED' ? 'Verification was skipped.' : 'The destination matches the source.',
        todo: `Point your applications at ${dest} and resume writes there. Keep the source until you are satisfied.` };
    case 'EXPIRED':
      return { kind: 'error', title: 'The cutover window lapsed',
        what: msg || 'The migration was ready, but nobody cut over within the cutover window, so syncing stopped.',
        todo: 'Start a new migration with “Clear existing data on the destination” and cut over within the window (use Extend if you need more time).' };
    case 'FAILED':
      if (/^cancelled by/.test(msg)) {
        return { kind: 'warn', title: 'The migration was cancelled', what: `${msg}.`,
          todo: `${dest} keeps what was copied so far and the migration's state in the __livemigrate database; the source is unchanged. To migrate again, start a new migration and choose “Clear existing data on the destination”.` };
      }
      return { kind: 'error', title: 'The migration failed', what: msg || 'The sync engine stopped with an error.',
        todo: `Fix the cause named above (the migration host's log on ${(m.migrationHosts || []).join(', ')} has details), validate again, then start a new migration with “Clear existing data on the destination”: the destination holds a partial copy.` };
    default:
      return { kind: 'info', title: 'The migration is still running', what: 'There is no report until it finishes.', todo: 'Follow it on the live walk-through.' };
  }
}

/** downtimeParts lists the downtime's parts as the engine measured them. */
function downtimeParts(d) {
  const after = d.verificationMode === 'after';
  const parts = [['commit-point', 'Commit point (the source\'s newest change)', d.commitPointSeconds],
    ['drain', 'Drain (the last changes applied)', d.drainSeconds],
    ['index-restore', 'Unique indexes restored', d.indexRestoreSeconds],
    ['verification', after ? 'Verification (after the destination became writable: not downtime)' : 'Verification', d.verificationSeconds],
    ['other', 'Other (the cutover reaching the migration host, the report coming back)', d.otherSeconds]];
  return h('ul', { id: 'downtime-parts', class: 'plain' }, parts.map(([key, label, sec]) =>
    h('li', { 'data-part': key, 'data-seconds': sec }, `${label}: `, h('strong', {}, fmtDuration(sec)))));
}

/** commitVerification says what the commit compared, found and repaired, and its coverage. */
function commitVerification(d) {
  const f = d.foundBeforeRepair; const c = d.coverage; const b = d.background;
  const modes = { continuous: 'Continuous: verified while syncing, changed documents rechecked at cutover',
    full: 'Full: every document compared during the cutover', after: 'After: compared once the destination was writable, not repaired' };
  return [
    h('dl', { class: 'facts', id: 'commit-verification' },
      h('dt', {}, 'Mode'), h('dd', { 'data-fact': 'mode', 'data-mode': d.verificationMode }, modes[d.verificationMode] || d.verificationMode),
      h('dt', {}, d.verificationMode === 'continuous' ? 'Changed documents rechecked at cutover' : 'Documents compared at cutover'),
      h('dd', { 'data-fact': 'rechecked' }, fmtCount(d.documentsRechecked)),
      h('dt', {}, 'Found different before repair'), h('dd', { 'data-fact': 'found' }, `${fmtCount(f.missing)} missing, ${fmtCount(f.extra)} extra, ${fmtCount(f.differing)} differing`),
      h('dt', {}, 'Repaired'), h('dd', { 'data-fact': 'repaired' }, fmtCount(d.repaired)),
      h('dt', {}, 'Coverage'), h('dd', { 'data-fact': 'coverage', 'data-complete': String(c.complete) },
        c.complete ? 'Complete: every document of every collection was compared after its last change' : 'Incomplete',
        d.verificationMode === 'continuous'
          ? ` (${fmtCount(c.namespaces)} collections, ${fmtCount(c.namespacesByPass)} by their background pass, ${fmtCount((c.comparedInFull || []).length)} compared in full)`
          : ` (${fmtCount(c.namespaces)} collections, every document compared)`),
      b ? [h('dt', {}, 'In the background'), h('dd', { 'data-fact': 'background' },
        `${fmtCount(b.documentsCompared)} documents compared in ${fmtCount(b.passes)} passes (${fmtCount(b.passesInvalidated)} voided), ${fmtCount(b.documentsRechecked)} rechecked, paused ${fmtCount(b.pauses)} times (${fmtDuration(b.pausedSeconds)}), slowed ${fmtDuration(b.slowedSeconds || 0)}`)] : null),
    (c.comparedInFull || []).length ? h('ul', { id: 'compared-in-full' }, c.comparedInFull.map((n) => h('li', { 'data-ns': n.namespace }, h('code', {}, n.namespace), `: compared in full at cutover, ${n.reason}`))) : null];
}

export async function render(main, { groupId, migrationId }, page) {
  let mp, evs, rep = null;
  try {
    [mp, evs] = await Promise.all([api.progress(groupId, migrationId), api.events(groupId, migrationId)]);
    if (mp.migration.status === 'COMPLETE') rep = await api.report(groupId, migrationId);
  } catch (e) {
    replace(main, h('h1', {}, 'Migration report'), errorBox(e, 'load the report'));
    return;
  }
  const [project, org] = await api.project(groupId).then(async (p) => [p, await api.org(p.orgId).catch(() => null)], () => [null, null]);
  if (!page.alive()) return;
  const names = labels(migrationId);
  if (!names.destination) names.destination = mp.destinationClusterName;
  const a = advice(mp, rep, names);
  const m = mp.migration;

  replace(main,
    projectCrumbs(org, project || { id: groupId, name: 'Project' }, [`Migration ${migrationId}`, `#/groups/${groupId}/migrations/${migrationId}`], 'Report'),
    h('h1', {}, 'Migration report'),
    h('p', { class: 'muted' }, 'Migration ', h('code', {}, migrationId), ' · ', statusBadge(m.status),
      names.source ? ` · ${names.source} → ${names.destination}` : ''),
    h('section', { class: `alert ${a.kind}`, id: 'outcome', 'data-outcome': m.status, 'aria-labelledby': 'out-h', role: a.kind === 'error' ? 'alert' : null },
      h('h2', { id: 'out-h' }, a.title),
      h('p', {}, h('strong', {}, 'What happened: '), a.what),
      h('p', { id: 'what-to-do' }, h('strong', {}, 'What to do: '), a.todo)),
    rep ? h('section', { class: 'card', 'aria-labelledby': 'sum-h' },
      h('h2', { id: 'sum-h' }, 'Summary'),
      h('dl', { class: 'facts', id: 'summary' },
        h('dt', {}, 'Changes synced'), h('dd', { 'data-fact': 'changes' }, fmtCount(rep.changesSynced)),
        h('dt', {}, 'Downtime (writes stopped to finalized)'), h('dd', { 'data-fact': 'downtime', 'data-seconds': rep.downtimeSeconds }, fmtDuration(rep.downtimeSeconds)),
        rep.downtime ? [h('dt', {}, 'Of which'), h('dd', {}, downtimeParts(rep.downtime))] : null,
        h('dt', {}, 'Duration'), h('dd', { 'data-fact': 'duration' }, fmtDuration(rep.durationSeconds)),
        h('dt', {}, 'Bytes copied'), h('dd', { 'data-fact': 'bytes' }, `${fmtBytes(rep.bytesCopied)} (${fmtCount(rep.bytesCopied)} bytes)`),
        h('dt', {}, 'Collections copied'), h('dd', { 'data-fact': 'collections' }, fmtCount(rep.collectionsCopied)),
        h('dt', {}, 'Completed'), h('dd', {}, fmtTime(rep.completedAt)))) : null,
    rep ? h('section', { class: 'card', 'aria-labelledby': 'ver-h' },
      h('h2', { id: 'ver-h' }, 'Verification'),
      h('p', { id: 'verification-status' }, statusBadge(rep.verification.status), ' ', rep.verification.message || ''),
      rep.downtime ? commitVerification(rep.downtime) : null,
      rep.verification.namespaces.length
        ? table('Source and destination compared per collection',
          [{ label: 'Collection' }, { label: 'Matched', num: true }, { label: 'Missing', num: true }, { label: 'Extra', num: true }, { label: 'Differing', num: true }, { label: 'Examples (_id)' }],
          rep.verification.namespaces, (n) => h('tr', { 'data-ns': n.namespace },
            h('th', { scope: 'row' }, n.namespace), h('td', { class: 'num' }, fmtCount(n.matched)), h('td', { class: 'num' }, fmtCount(n.missing)),
            h('td', { class: 'num' }, fmtCount(n.extra)), h('td', { class: 'num' }, fmtCount(n.differing)),
            h('td', {}, (n.examples || []).length ? h('code', {}, n.examples.join(', ')) : '—')))
        : h('p', { class: 'muted' }, 'The migration host reported no per-collection breakdown.')) : null,
    !rep && mp.progress ? h('section', { class: 'card', 'aria-labelledby': 'last-h' },
      h('h2', { id: 'last-h' }, 'Last progress before it ended'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Phase'), h('dd', {}, mp.progress.phase),
        h('dt', {}, 'Copied'), h('dd', {}, `${fmtBytes(mp.progress.estimatedCopiedBytes)} of ${fmtBytes(mp.progress.estimatedTotalBytes)}, ${fmtCount(mp.progress.copiedDocuments)} documents`),
        h('dt', {}, 'Events applied'), h('dd', {}, fmtCount(mp.progress.totalEventsApplied)))) : null,
    h('section', { class: 'card', 'aria-labelledby': 'hist-h' },
      h('h2', { id: 'hist-h' }, 'Event history'),
      table('Events of this migration, oldest first', [{ label: 'Time' }, { label: 'Event' }, { label: 'Message' }], evs,
        (e) => h('tr', { 'data-event': e.type }, h('td', {}, h('time', { datetime: e.createdAt }, fmtTime(e.createdAt))), h('td', {}, e.type), h('td', {}, e.message)))),
    h('p', {}, h('a', { href: `#/groups/${groupId}/migrations/${migrationId}` }, 'Back to the walk-through'), ' · ',
      h('a', { href: `#/groups/${groupId}` }, 'Back to the project')));
}
