// "I'm Ready to Start": the prerequisites of a live migration, shown before
// the wizard. Each item is checked here where the control plane has the data
// (the source deployments and migration hosts the agents report), else it is
// an item the user confirms. The migration host's validation checks them
// again before the start.

import * as api from './api.js';
import { h, replace, errorBox, badge, fmtBytes, projectCrumbs, versionProblem, MIB } from './dom.js';

/** prepKey is where the deployment chosen here is kept for the wizard. */
export const prepKey = (groupId, cluster) => `lm:prep:${groupId}:${cluster}`;

export async function render(main, { groupId, cluster }, page) {
  let project, dest, org = null, available = [], agents = [], availErr = null;
  try {
    [project, dest] = await Promise.all([api.project(groupId), api.cluster(groupId, cluster)]);
    org = await api.org(project.orgId).catch(() => null);
    const [av, ag] = await Promise.allSettled([api.availableProjects(project.orgId), api.agents(project.orgId)]);
    if (av.status === 'fulfilled') available = av.value; else availErr = av.reason;
    if (ag.status === 'fulfilled') agents = ag.value;
  } catch (e) {
    replace(main, h('h1', {}, 'Before you migrate'), errorBox(e, 'open the migration prerequisites'));
    return;
  }
  if (!page.alive()) return;
  const deployments = [];
  for (const p of available) for (const d of p.deployments) deployments.push(d);
  const wizard = `/groups/${groupId}/clusters/${encodeURIComponent(dest.name)}/migrate`;
  let chosen = sessionStorage.getItem(prepKey(groupId, dest.name)) || '';
  if (!deployments.some((d) => d.name === chosen)) chosen = deployments.length === 1 ? deployments[0].name : '';

  const sel = h('select', { name: 'prepDeployment', id: 'prep-deployment' }, h('option', { value: '' }, 'Choose a source deployment…'),
    deployments.map((d) => h('option', { value: d.name, selected: d.name === chosen }, d.unreachable ? `${d.name} (unreachable)` : d.name)));
  const list = h('ul', { class: 'checklist', id: 'prerequisites' });
  const ready = h('button', { type: 'button', class: 'primary', id: 'ready-to-start' }, 'I\'m Ready to Start');
  const why = h('p', { class: 'hint', id: 'ready-why' });
  const confirms = {};

  // item renders one prerequisite: auto is {status: ok|bad|unknown, text} or null (the user confirms).
  const item = (key, title, detail, auto) => {
    let mark;
    if (auto && auto.status !== 'unknown') {
      mark = auto.status === 'ok' ? badge('Checked', 'ok') : badge('Not met', 'bad');
    } else {
      const box = h('input', { type: 'checkbox', 'data-confirm': key, checked: !!confirms[key], 'aria-label': `I confirm: ${title}` });
      box.addEventListener('change', () => { confirms[key] = box.checked; gate(); });
      mark = h('label', { class: 'inline' }, box, 'I confirm');
    }
    return h('li', { 'data-prereq': key, 'data-state': auto && auto.status !== 'unknown' ? auto.status : 'confirm' },
      h('strong', {}, title), ' ', mark, h('p', { class: 'hint' }, detail), auto && auto.text ? h('p', { class: auto.status === 'bad' ? 'field-error' : 'hint' }, auto.text) : null);
  };

  function build() {
    const d = deployments.find((x) => x.name === sel.value);
    const online = agents.filter((a) => !a.lost);
    const items = [];
    const ver = !d ? { status: 'unknown', text: availErr ? 'The source deployments cannot be read with your role: confirm it yourself.' : 'Choose the source deployment above to check it.' }
      : d.unreachable ? { status: 'bad', text: `The migration host cannot reach ${d.name}: ${d.unreachable}` }
        : versionProblem(d.mongoDBVersion) ? { status: 'bad', text: versionProblem(d.mongoDBVersion) }
          : { status: 'ok', text: `${d.name} runs MongoDB ${d.mongoDBVersion} (FCV ${d.featureCompatibilityVersion}); the destination must run the same major version.` };
    items.push(item('version', 'Source version', 'The source runs MongoDB 6.0.17+, 7.0.13+ or 8.0+, with the same major version as the destination.', ver));
    items.push(item('roles', 'Source user roles', 'The source user has the backup and readAnyDatabase roles (and clusterMonitor for a sharded source), or the migration host supplies managed credentials.', null));
    items.push(item('oplog', 'Oplog sized for the migration',
      'The source\'s oplog holds every write made while the initial copy runs (at your peak write rate), or changes are lost and the migration must restart.',
      d && !d.unreachable ? { status: 'unknown', text: `${d.name}: oplog ${fmtBytes(d.oplogSizeMB * MIB)} for ${fmtBytes(d.dbSizeBytes)} of data.` } : null));
    items.push(item('size', 'Destination sized at least as the source',
      `${dest.name} has at least the source's storage, memory and CPU${d && !d.unreachable ? ` (the source holds ${fmtBytes(d.dbSizeBytes)})` : ''}; the migration host checks the free disk space.`, null));
    items.push(item('host', 'Migration host reachable',
      'A migration host runs livemigrate agent with this organization\'s link token, reaches the source and the destination, and reports here.',
      online.length ? { status: 'ok', text: `Online: ${online.map((a) => a.hostname).join(', ')}.` }
        : { status: 'bad', text: agents.length ? `Every migration host is lost (${agents.map((a) => a.hostname).join(', ')}): restart livemigrate agent.` : 'No migration host is linked: generate a link token on the Live Migration page and start livemigrate agent.' }));
    items.push(item('workload', 'No workloads on the destination', `Nothing but the migration writes to ${dest.name} until the cutover.`, null));
    items.push(item('namespaces', 'No namespace changes during the migration', 'No collection or database is created, dropped or renamed, and no index is built on the source, while the migration runs.', null));
    replace(list, items);
    gate();
  }

  function gate() {
    const bad = list.querySelectorAll('li[data-state=bad]').length;
    const open = Array.from(list.querySelectorAll('input[data-confirm]')).filter((b) => !b.checked).length;
    ready.disabled = bad > 0 || open > 0;
    why.textContent = bad ? `${bad} prerequisite${bad > 1 ? 's are' : ' is'} not met: fix ${bad > 1 ? 'them' : 'it'} first.`
      : open ? `Confirm the ${open} remaining item${open > 1 ? 's' : ''}.` : 'Every prerequisite is met or confirmed.';
  }

  sel.addEventListener('change', build);
  ready.addEventListener('click', () => {
    if (ready.disabled) return;
    sessionStorage.setItem(prepKey(groupId, dest.name), sel.value);
    page.go(wizard);
  });

  replace(main,
    projectCrumbs(org, project, dest.name),
    h('h1', {}, `Before you migrate to ${dest.name}`),
    h('p', {}, 'Live migration copies a source deployment into this cluster and keeps it in sync until you cut over. Make sure these hold first; the migration host validates them again before the start.'),
    h('section', { class: 'card', 'aria-labelledby': 'pre-h' },
      h('h2', { id: 'pre-h' }, 'Prerequisites'),
      deployments.length
        ? h('div', { class: 'field' }, h('label', { for: 'prep-deployment' }, 'Source deployment'), sel)
        : h('p', { class: 'alert warn' }, 'No source deployment is reported yet. ', org ? h('a', { href: `#/orgs/${org.id}/live-migration` }, 'Link a migration host') : 'Link a migration host', ' first.'),
      list, h('div', { class: 'actions' }, ready, h('a', { class: 'button', href: `#/groups/${groupId}` }, 'Cancel')), why));
  build();
}
