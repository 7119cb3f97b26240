// A destination project: its clusters ("Migrate data to this cluster") and
// its live migrations.

import * as api from './api.js';
import { h, replace, errorBox, table, statusBadge } from './dom.js';

export async function render(main, { groupId }, page) {
  let project, clusters, migrations;
  try {
    [project, clusters, migrations] = await Promise.all([api.project(groupId), api.clusters(groupId), api.migrations(groupId)]);
  } catch (e) {
    replace(main, h('h1', {}, 'Project'), errorBox(e, 'open this project'));
    return;
  }
  if (!page.alive()) return;
  replace(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Organizations'), ' / ',
      h('a', { href: `#/orgs/${project.orgId}/live-migration` }, 'Live Migration'), ' / ', project.name),
    h('h1', {}, `Project ${project.name}`),
    h('section', { class: 'card', 'aria-labelledby': 'cl-h' },
      h('h2', { id: 'cl-h' }, 'Destination clusters'),
      clusters.length
        ? table('Clusters of this project', [{ label: 'Cluster' }, { label: 'Connection' }, { label: '' }], clusters,
          (c) => h('tr', { 'data-cluster': c.name },
            h('th', { scope: 'row' }, c.name),
            h('td', {}, h('code', {}, c.connectionString)),
            h('td', {}, h('a', { class: 'button primary', href: `#/groups/${groupId}/clusters/${encodeURIComponent(c.name)}/migrate`,
              'aria-label': `Migrate data to cluster ${c.name}` }, 'Migrate data to this cluster'))))
        : h('p', {}, 'No destination cluster is registered. Register one with ', h('code', {}, 'livemigrate clusters create'), ' or the Admin API.')),
    h('section', { class: 'card', 'aria-labelledby': 'mig-h' },
      h('h2', { id: 'mig-h' }, 'Live migrations'),
      migrations.length
        ? table('Live migrations, newest first', [{ label: 'Migration' }, { label: 'Status' }, { label: 'Migration host' }, { label: '' }], migrations,
          (m) => h('tr', { 'data-migration': m._id },
            h('th', { scope: 'row' }, h('code', {}, m._id)),
            h('td', {}, statusBadge(m.status), m.readyForCutover ? ' ready for cutover' : ''),
            h('td', {}, (m.migrationHosts || []).join(', ')),
            h('td', {}, h('a', { href: `#/groups/${groupId}/migrations/${m._id}` }, 'Open'),
              m.status === 'COMPLETE' || m.status === 'FAILED' || m.status === 'EXPIRED'
                ? [' · ', h('a', { href: `#/groups/${groupId}/migrations/${m._id}/report` }, 'Report')] : null)))
        : h('p', {}, 'No live migration yet.')));
}
