// A destination project: its clusters ("Migrate data to this cluster"),
// registering a destination cluster, and its live migrations.

import * as api from './api.js';
import { h, replace, errorBox, table, statusBadge, field, projectCrumbs, announce } from './dom.js';

export async function render(main, { groupId }, page) {
  let project, clusters, migrations, org = null;
  try {
    [project, clusters, migrations] = await Promise.all([api.project(groupId), api.clusters(groupId), api.migrations(groupId)]);
    org = await api.org(project.orgId).catch(() => null);
  } catch (e) {
    replace(main, h('h1', {}, 'Project'), errorBox(e, 'open this project'));
    return;
  }
  if (!page.alive()) return;
  const finished = (s) => s === 'COMPLETE' || s === 'FAILED' || s === 'EXPIRED';
  replace(main,
    projectCrumbs(org, null, project.name),
    h('h1', {}, project.name),
    h('section', { class: 'card', 'aria-labelledby': 'cl-h' },
      h('h2', { id: 'cl-h' }, 'Destination clusters'),
      clusters.length
        ? table('Clusters of this project', [{ label: 'Cluster' }, { label: 'Connection' }, { label: '' }], clusters,
          (c) => h('tr', { 'data-cluster': c.name },
            h('th', { scope: 'row' }, c.name),
            h('td', {}, h('code', {}, c.connectionString)),
            h('td', {}, h('a', { class: 'button primary', href: `#/groups/${groupId}/clusters/${encodeURIComponent(c.name)}/prepare`,
              'aria-label': `Migrate data to cluster ${c.name}` }, 'Migrate data to this cluster'))))
        : h('p', { id: 'no-clusters' }, 'No destination cluster is registered yet. Register the cluster to migrate into below.'),
      registerCluster(groupId, page)),
    h('section', { class: 'card', 'aria-labelledby': 'mig-h' },
      h('h2', { id: 'mig-h' }, 'Live migrations'),
      migrations.length
        ? table('Live migrations, newest first', [{ label: 'Migration' }, { label: 'Status' }, { label: 'Migration host' }, { label: '' }], migrations,
          (m) => h('tr', { 'data-migration': m._id },
            h('th', { scope: 'row' }, h('code', {}, m._id)),
            h('td', {}, statusBadge(m.status), m.readyForCutover ? ' ready for cutover' : ''),
            h('td', {}, (m.migrationHosts || []).join(', ')),
            h('td', {}, h('a', { href: `#/groups/${groupId}/migrations/${m._id}` }, 'Open'),
              finished(m.status) ? [' · ', h('a', { href: `#/groups/${groupId}/migrations/${m._id}/report` }, 'Report')] : null)))
        : h('p', {}, 'No live migration yet.')));
}

// registerCluster is the form of POST /groups/{groupId}/clusters: the
// destination's name and connection string, and optionally the user and
// password the migration host writes with (never shown again).
function registerCluster(groupId, page) {
  const name = h('input', { type: 'text', name: 'clusterName', autocomplete: 'off', spellcheck: 'false' });
  const uri = h('input', { type: 'text', name: 'clusterConnectionString', placeholder: 'mongodb://dest.example.net:27017/?replicaSet=rs0', autocomplete: 'off', spellcheck: 'false' });
  const user = h('input', { type: 'text', name: 'clusterUsername', autocomplete: 'off', spellcheck: 'false' });
  const pass = h('input', { type: 'password', name: 'clusterPassword', autocomplete: 'new-password' });
  const fName = field('Cluster name', name, 'How the cluster is named in this project (letters, digits and -).');
  const fURI = field('Connection string', uri, 'mongodb:// or mongodb+srv://, as the migration host reaches the destination.');
  const fUser = field('Username (optional)', user, 'A user of the destination with readWriteAnyDatabase, dbAdminAnyDatabase and clusterMonitor.');
  const fPass = field('Password (optional)', pass, 'Stored encrypted; never shown again.');
  const msg = h('div', { id: 'register-status' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'register-cluster' }, 'Register cluster');
  const f = h('form', { novalidate: true, id: 'register-form' }, fName, fURI, fUser, fPass, msg, h('div', { class: 'actions' }, submit));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    [fName, fURI, fUser, fPass].forEach((x) => x.setError(''));
    replace(msg);
    const n = name.value.trim(); const u = uri.value.trim();
    if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/.test(n)) { fName.setError('Enter a name of letters, digits and - (at most 64), starting with a letter or digit.'); name.focus(); return; }
    if (!/^mongodb(\+srv)?:\/\/\S+$/.test(u)) { fURI.setError('Enter a connection string starting with mongodb:// or mongodb+srv://.'); uri.focus(); return; }
    if (!!user.value.trim() !== !!pass.value) {
      (user.value.trim() ? fPass : fUser).setError('Give both the username and the password, or neither.');
      (user.value.trim() ? pass : user).focus(); return;
    }
    submit.disabled = true;
    try {
      const req = { name: n, connectionString: u };
      if (user.value.trim()) { req.username = user.value.trim(); req.password = pass.value; }
      await api.createCluster(groupId, req);
      announce(`Cluster ${n} registered.`);
      if (page.alive()) page.reload();
    } catch (e) {
      replace(msg, errorBox(e, 'register the cluster'));
      submit.disabled = false;
    }
  });
  return h('details', { id: 'register', open: false },
    h('summary', {}, 'Register a destination cluster'),
    h('p', { class: 'hint' }, 'The same as ', h('code', {}, 'POST /api/atlas/v2/groups/{groupId}/clusters'), ' of the Admin API.'), f);
}
