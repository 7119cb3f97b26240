// "Migrate data to this cluster": the wizard that builds an Atlas migration
// request, validates it on the migration host and starts the migration.

import * as api from './api.js';
import { h, replace, field, errorBox, table, statusBadge, fmtBytes, fmtTime, fmtAgo, announce, projectCrumbs, checkTitle, sortChecks } from './dom.js';
import { prepKey } from './prepare.js';

/** CONNECTIONS are Atlas's ways to reach the destination; only PUBLIC is available here. */
export const CONNECTIONS = [
  { value: 'PUBLIC', label: 'Standard', hint: 'Over the connection string the destination cluster is registered with.' },
  { value: 'VPC_PEERING', label: 'VPC peering', hint: 'Not available: livemigrate has no VPC peering of its own; reach the destination over a network path and register that connection string instead.' },
  { value: 'PRIVATE_LINK', label: 'Private endpoint', hint: 'Not available: livemigrate manages no private endpoints; register the destination with the private endpoint\'s connection string and choose Standard.' },
];

const STEPS = ['Source', 'Credentials', 'Options', 'Validate', 'Review and start'];

// verificationModes are the cutover verification choices (docs/design/commit.md).
const verificationModes = [
  ['continuous', 'Continuous (recommended): verified while syncing, short downtime'],
  ['full', 'Full: every document compared during the downtime'],
  ['after', 'After cutover: compared once writable, differences reported, not repaired'],
];

export const shardingExample = `[
  {"database": "shop", "collection": "orders",
   "shardCollection": {"key": [{"customerId": 1}, {"_id": 1}]}},
  {"database": "shop", "collection": "events",
   "shardCollection": {"key": [{"_id": "hashed"}]}}
]`;

/** parseSharding checks the sharding entries JSON; it returns {entries} or {error}. */
export function parseSharding(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { error: `Not valid JSON: ${e.message}` };
  }
  if (!Array.isArray(v) || v.length === 0) return { error: 'Enter a JSON array with at least one sharding entry (see the example).' };
  const seen = new Set();
  for (let i = 0; i < v.length; i++) {
    const e = v[i]; const n = `Entry ${i + 1}`;
    if (!e || typeof e !== 'object' || Array.isArray(e)) return { error: `${n} must be an object.` };
    for (const k of Object.keys(e)) {
      if (!['database', 'collection', 'shardCollection'].includes(k)) return { error: `${n} has an unknown field "${k}".` };
    }
    if (typeof e.database !== 'string' || !e.database || /[/\\. "$]/.test(e.database)) return { error: `${n}: "database" must be a database name.` };
    if (typeof e.collection !== 'string' || !e.collection || e.collection.includes('$')) return { error: `${n}: "collection" must be a collection name.` };
    const ns = `${e.database}.${e.collection}`;
    if (seen.has(ns)) return { error: `${n}: ${ns} is listed twice.` };
    seen.add(ns);
    const key = e.shardCollection && e.shardCollection.key;
    if (!Array.isArray(key) || key.length === 0) return { error: `${n}: "shardCollection.key" must be a non-empty array such as [{"_id": 1}].` };
    let hashed = 0;
    for (let j = 0; j < key.length; j++) {
      const f = key[j];
      const ks = f && typeof f === 'object' && !Array.isArray(f) ? Object.keys(f) : [];
      if (ks.length !== 1 || !(f[ks[0]] === 1 || f[ks[0]] === 'hashed')) {
        return { error: `${n}: shardCollection.key[${j}] must map one field to 1 or "hashed", e.g. {"customerId": 1}.` };
      }
      if (f[ks[0]] === 'hashed') hashed++;
    }
    if (hashed > 1) return { error: `${n}: a shard key can have at most one hashed field.` };
  }
  return { entries: v };
}

export async function render(main, { groupId, cluster }, page) {
  let project, dest, available, org = null;
  try {
    [project, dest] = await Promise.all([api.project(groupId), api.cluster(groupId, cluster)]);
    available = await api.availableProjects(project.orgId);
    org = await api.org(project.orgId).catch(() => null);
  } catch (e) {
    replace(main, h('h1', {}, 'Migrate data to this cluster'), errorBox(e, 'start the migration wizard'));
    return;
  }
  if (!page.alive()) return;

  const st = {
    step: 0, sourceGroupId: available[0] ? available[0].projectId : '', deployment: sessionStorage.getItem(prepKey(groupId, dest.name)) || '', host: '', connection: 'PUBLIC',
    managed: false, username: '', password: '', ssl: false, caPath: '',
    sharding: false, shardingText: '', createIndexes: true, drop: false, dropConfirm: '', verification: 'continuous',
    validation: null, checks: [], validatedKey: '', validating: false, validateError: null,
  };
  const srcProject = () => available.find((p) => p.projectId === st.sourceGroupId);

  const request = () => {
    const req = {
      source: { clusterName: st.deployment, groupId: st.sourceGroupId, managedAuthentication: st.managed, ssl: st.ssl },
      destination: { clusterName: dest.name, groupId, hostnameSchemaType: st.connection },
      migrationHosts: [st.host],
      dropDestinationData: st.drop,
      verificationMode: st.verification,
    };
    if (!st.managed && st.username) { req.source.username = st.username; req.source.password = st.password; }
    if (st.ssl && st.caPath) req.source.caCertificatePath = st.caPath;
    if (st.sharding) req.sharding = { createSupportingIndexes: st.createIndexes, shardingEntries: parseSharding(st.shardingText).entries };
    return req;
  };
  const requestKey = () => JSON.stringify(request());
  const validated = () => st.validation && st.validation.status === 'SUCCESS' && st.validatedKey === requestKey();

  const stepsEl = h('ol', { class: 'steps', 'aria-label': 'Wizard steps' });
  const body = h('div', {});
  replace(main,
    projectCrumbs(org, project, [dest.name, `#/groups/${groupId}/clusters/${encodeURIComponent(dest.name)}/prepare`], 'Migrate'),
    h('h1', {}, `Migrate data to ${dest.name}`),
    h('p', {}, 'Live migration copies a source deployment into this cluster and keeps it in sync until you cut over.'),
    stepsEl, body);

  function show(step) {
    st.step = step;
    replace(stepsEl, STEPS.map((s, i) => h('li', { 'aria-current': i === step ? 'step' : null, class: i < step ? 'done' : null }, s)));
    const heading = h('h2', { tabindex: '-1', id: 'step-h' }, `Step ${step + 1} of ${STEPS.length}: ${STEPS[step]}`);
    const content = [sourceStep, credentialsStep, optionsStep, validateStep, reviewStep][step]();
    replace(body, h('section', { class: 'card', 'aria-labelledby': 'step-h', 'data-step': STEPS[step] }, heading, content));
    heading.focus();
  }

  function nav(onNext, nextLabel, nextAttrs) {
    const back = st.step > 0 ? h('button', { type: 'button', id: 'wizard-back', onclick: () => show(st.step - 1) }, 'Back') : null;
    const next = onNext ? h('button', Object.assign({ type: 'submit', class: 'primary' }, nextAttrs || {}), nextLabel || 'Next') : null;
    return h('div', { class: 'actions' }, back, next,
      h('a', { class: 'button', href: `#/groups/${groupId}` }, 'Cancel'));
  }

  function form(children, onNext, nextLabel) {
    const f = h('form', { novalidate: true }, children, nav(onNext, nextLabel));
    f.addEventListener('submit', (ev) => { ev.preventDefault(); onNext(); });
    return f;
  }

  function sourceStep() {
    if (!available.length || !available.some((p) => p.deployments.length)) {
      return [h('div', { class: 'alert warn', role: 'alert' },
        'No source deployment is available. Link a migration host on the ',
        h('a', { href: `#/orgs/${project.orgId}/live-migration` }, 'Live Migration page'),
        ' and let it report the deployments it can reach.'), nav(null)];
    }
    const projSel = h('select', { name: 'sourceProject' },
      available.map((p) => h('option', { value: p.projectId, selected: p.projectId === st.sourceGroupId }, p.name)));
    const depSel = h('select', { name: 'deployment' });
    const hostSel = h('select', { name: 'migrationHost' });
    const depInfo = h('p', { class: 'hint', 'aria-live': 'polite' });
    const fill = () => {
      const p = srcProject();
      replace(depSel, h('option', { value: '' }, 'Choose a deployment…'),
        p.deployments.map((d) => h('option', { value: d.name, selected: d.name === st.deployment && !d.unreachable, disabled: !!d.unreachable },
          d.unreachable ? `${d.name} — unreachable from the migration host`
            : `${d.name} — MongoDB ${d.mongoDBVersion}, ${d.sharded ? 'sharded' : 'replica set'}, ${fmtBytes(d.dbSizeBytes)}`)));
      replace(hostSel, h('option', { value: '' }, 'Choose a migration host…'),
        p.migrationHosts.map((m) => h('option', { value: m, selected: m === st.host }, m)));
      if (!st.host && p.migrationHosts.length === 1) { st.host = p.migrationHosts[0]; hostSel.value = st.host; }
      describe();
    };
    const describe = () => {
      const d = srcProject().deployments.find((x) => x.name === depSel.value);
      const bad = srcProject().deployments.filter((x) => x.unreachable);
      depInfo.textContent = (d ? `Oplog ${fmtBytes(d.oplogSizeMB * 1048576)} · FCV ${d.featureCompatibilityVersion} · TLS ${d.tlsEnabled ? 'on' : 'off'} · reported by agent ${d.agentVersion}` : '')
        + bad.map((x) => ` ${x.name} is unreachable: ${x.unreachable}.`).join('');
    };
    projSel.addEventListener('change', () => { st.sourceGroupId = projSel.value; st.deployment = ''; st.host = ''; fill(); });
    depSel.addEventListener('change', describe);
    fill();
    const fDep = field('Source deployment', depSel);
    const fHost = field('Migration host', hostSel, 'The host running livemigrate agent that reaches the source and this cluster.');
    depInfo.id = 'dep-info';
    const conn = h('fieldset', { id: 'connection' }, h('legend', {}, 'Destination connection'),
      CONNECTIONS.map((c) => {
        const hintId = `conn-${c.value}-hint`;
        return h('div', {}, h('label', { class: `inline${c.value === 'PUBLIC' ? '' : ' disabled'}` },
          h('input', { type: 'radio', name: 'hostnameSchemaType', value: c.value, checked: c.value === st.connection, disabled: c.value !== 'PUBLIC', 'aria-describedby': hintId }),
          c.label), h('p', { class: 'hint', id: hintId }, c.hint));
      }));
    return form([field('Source project', projSel), fDep, depInfo, fHost, conn], () => {
      fDep.setError(depSel.value ? '' : 'Choose the deployment to migrate from.');
      fHost.setError(hostSel.value ? '' : 'Choose the migration host.');
      if (!depSel.value) { depSel.focus(); return; }
      if (!hostSel.value) { hostSel.focus(); return; }
      st.deployment = depSel.value; st.host = hostSel.value;
      show(1);
    });
  }

  function credentialsStep() {
    const managed = h('input', { type: 'checkbox', name: 'managedAuthentication', checked: st.managed });
    const user = h('input', { type: 'text', name: 'username', value: st.username, autocomplete: 'off', spellcheck: 'false' });
    const pass = h('input', { type: 'password', name: 'password', value: st.password, autocomplete: 'new-password' });
    const fUser = field('Source username', user, 'Needs the backup and readAnyDatabase roles (plus clusterMonitor for a sharded source).');
    const fPass = field('Source password', pass, 'Sent to the migration host only; never shown again.');
    const creds = h('div', { hidden: st.managed }, fUser, fPass);
    managed.addEventListener('change', () => { creds.hidden = managed.checked; });
    const ssl = h('input', { type: 'checkbox', name: 'ssl', checked: st.ssl });
    const ca = h('input', { type: 'text', name: 'caCertificatePath', value: st.caPath, placeholder: '/etc/ssl/source-ca.pem', spellcheck: 'false' });
    const fCA = field('CA certificate file on the migration host (optional)', ca, 'A PEM file path on the migration host. Leave empty to use the host\'s system trust store.');
    const tls = h('div', { hidden: !st.ssl }, fCA);
    ssl.addEventListener('change', () => { tls.hidden = !ssl.checked; });
    return form([
      h('fieldset', {}, h('legend', {}, 'Authentication to the source'),
        h('label', { class: 'inline' }, managed, 'Managed authentication: the migration host supplies the credentials'),
        creds),
      h('fieldset', {}, h('legend', {}, 'TLS'),
        h('label', { class: 'inline' }, ssl, 'Connect to the source with TLS'), tls),
    ], () => {
      fUser.setError(''); fPass.setError(''); fCA.setError('');
      if (!managed.checked) {
        if (!user.value.trim()) { fUser.setError('Enter the source username, or choose managed authentication.'); user.focus(); return; }
        if (!pass.value) { fPass.setError('Enter the source password.'); pass.focus(); return; }
      }
      if (ssl.checked && ca.value && !ca.value.startsWith('/')) { fCA.setError('Give an absolute path on the migration host, e.g. /etc/ssl/ca.pem.'); ca.focus(); return; }
      st.managed = managed.checked; st.username = user.value.trim(); st.password = pass.value;
      st.ssl = ssl.checked; st.caPath = ca.value.trim();
      show(2);
    });
  }

  function optionsStep() {
    // Sharded destinations are not supported yet (the API refuses sharding):
    // the option is shown, disabled, with why.
    const shard = h('input', { type: 'checkbox', name: 'sharding', disabled: true, 'aria-describedby': 'sharding-unavailable' });
    const text = h('textarea', { name: 'shardingEntries', rows: 8, spellcheck: 'false' });
    text.value = st.shardingText;
    const fText = field('Sharding entries (JSON)', text, 'One entry per collection to shard on the destination: database, collection and shard key (1 or "hashed" per field). Only for a replica set source going to a sharded destination.');
    const example = h('button', { type: 'button', id: 'sharding-example' }, 'Insert example');
    example.addEventListener('click', () => { text.value = shardingExample; text.focus(); });
    const createIdx = h('input', { type: 'checkbox', name: 'createSupportingIndexes', checked: st.createIndexes });
    const shardBox = h('div', { hidden: !st.sharding }, fText, h('div', { class: 'row' }, example),
      h('details', {}, h('summary', {}, 'Show the example'), h('pre', { class: 'example' }, shardingExample)),
      h('label', { class: 'inline' }, createIdx, 'Create the indexes that support the shard keys'));
    shard.addEventListener('change', () => { shardBox.hidden = !shard.checked; });

    const drop = h('input', { type: 'checkbox', name: 'dropDestinationData', checked: st.drop });
    const confirm = h('input', { type: 'text', name: 'confirmClusterName', value: st.dropConfirm, autocomplete: 'off', spellcheck: 'false' });
    const fConfirm = field(`Type the destination cluster name (${dest.name}) to confirm`, confirm);
    const dropBox = h('div', { hidden: !st.drop },
      h('div', { class: 'alert warn' }, h('strong', {}, 'Every database on ', dest.name, ' is deleted'), ' before the copy starts. This cannot be undone.'),
      fConfirm);
    drop.addEventListener('change', () => { dropBox.hidden = !drop.checked; });

    const verification = h('select', { name: 'verificationMode' },
      ...verificationModes.map(([value, label]) => h('option', { value, selected: st.verification === value }, label)));
    const fVerification = field('Verification at cutover', verification,
      'Continuous compares while syncing, so the cutover rechecks only what changed; full compares everything during the downtime (longer with more data); after compares once the destination is writable and repairs nothing.');

    return form([
      h('fieldset', {}, h('legend', {}, 'Sharding'),
        h('label', { class: 'inline' }, shard, 'Shard collections on the destination'),
        h('p', { class: 'hint', id: 'sharding-unavailable' }, 'Not available: sharded destination clusters are not supported yet, so shard keys and their supporting indexes would not be applied. Migrate into a replica set, or shard the collections yourself after the migration.'),
        shardBox),
      h('fieldset', {}, h('legend', {}, 'Existing data on the destination'),
        h('label', { class: 'inline' }, drop, 'Clear existing data on the destination cluster'), dropBox),
      h('fieldset', {}, h('legend', {}, 'Verification'), fVerification),
    ], () => {
      fText.setError(''); fConfirm.setError('');
      if (shard.checked) {
        const r = parseSharding(text.value);
        if (r.error) { fText.setError(r.error); text.focus(); return; }
      }
      if (drop.checked && confirm.value !== dest.name) {
        fConfirm.setError(`Type ${dest.name} exactly to confirm that its data may be deleted.`);
        confirm.focus(); return;
      }
      st.sharding = shard.checked; st.shardingText = text.value; st.createIndexes = createIdx.checked;
      st.drop = drop.checked; st.dropConfirm = confirm.value; st.verification = verification.value;
      show(3);
    });
  }

  function validateStep() {
    const out = h('div', { id: 'validation', 'aria-live': 'polite' });
    const run = h('button', { type: 'button', class: validated() ? null : 'primary', id: 'run-validation' }, 'Validate');
    const renderResult = () => {
      if (st.validating) { replace(out, h('p', { role: 'status', id: 'validating' }, `Validating on migration host ${st.host}… this usually takes a few seconds.`)); return; }
      if (st.hostLost) {
        const a = st.hostLost;
        replace(out, h('div', { class: 'alert error', role: 'alert', id: 'validation-host-lost' },
          h('strong', {}, `Migration host ${a.hostname} is lost. `), 'Nothing heard from it since ', fmtTime(a.lastSeenAt), ` (${fmtAgo(a.lastSeenAt)}), so it cannot validate. `,
          'Restart ', h('code', {}, 'livemigrate agent'), ` on ${a.hostname} with the same link token, or check that it reaches this control plane; then validate again.`));
        return;
      }
      if (st.validateError) { replace(out, errorBox(st.validateError, 'validate')); return; }
      const v = st.validation;
      if (!v) { replace(out, h('p', {}, 'The migration host checks that it reaches the source and this cluster, the versions, the source user\'s roles, TLS, disk space and existing data.')); return; }
      const stale = st.validatedKey !== requestKey();
      replace(out,
        stale ? h('p', { class: 'alert warn', id: 'validation-stale' }, 'The settings changed since this validation: validate again.')
          : v.status === 'SUCCESS'
          ? h('div', { class: 'alert ok', 'data-validation': 'SUCCESS' }, h('strong', {}, 'Validation passed. '), 'You can review and start the migration.')
          : h('div', { class: 'alert error', role: 'alert', 'data-validation': v.status },
            h('strong', {}, 'Validation failed. '), v.errorMessage || 'A check failed.',
            h('p', { class: 'hint' }, 'Fix the failing check below (go back to change the source, credentials or options), then validate again.')),
        st.checks.length
          ? table(stale ? 'Checks of the previous validation' : 'Validation checks', [{ label: 'Check' }, { label: 'Result' }, { label: 'Message' }], sortChecks(st.checks),
            (c) => h('tr', { 'data-check': c.name }, h('th', { scope: 'row' }, checkTitle(c.name)), h('td', {}, statusBadge(c.status)), h('td', {}, c.message || '')))
          : null);
    };
    run.addEventListener('click', async () => {
      st.validating = true; st.validateError = null; st.validation = null; st.checks = []; st.hostLost = null;
      run.disabled = true; next.disabled = true;
      renderResult();
      const key = requestKey();
      // lostHost returns the migration host's agent when it is lost (missed its heartbeats).
      const lostHost = async () => {
        const ags = await api.agents(project.orgId).catch(() => []);
        const a = ags.find((x) => x.hostname === st.host);
        return a && a.lost ? a : null;
      };
      try {
        st.hostLost = await lostHost();
        if (st.hostLost) return;
        let v = await api.validate(groupId, request());
        const deadline = Date.now() + 180000;
        let polls = 0;
        while (v.status === 'PENDING' && page.alive() && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 700));
          v = await api.validation(groupId, v._id);
          if (v.status === 'PENDING' && ++polls % 3 === 0 && (st.hostLost = await lostHost())) return;
        }
        if (!page.alive()) return;
        if (v.status === 'PENDING') throw new Error('The migration host did not answer within 3 minutes. Check on the Live Migration page that it is online.');
        const checks = await api.validationChecks(groupId, v._id);
        st.validation = v; st.checks = checks.checks || []; st.validatedKey = key;
        announce(`Validation ${v.status === 'SUCCESS' ? 'passed' : 'failed'}.`);
      } catch (e) {
        st.validateError = e;
      } finally {
        st.validating = false;
        if (page.alive()) { run.disabled = false; next.disabled = !validated(); renderResult(); }
      }
    });
    const f = form([
      h('dl', { class: 'facts' }, h('dt', {}, 'Source'), h('dd', {}, `${st.deployment} via ${st.host}`),
        h('dt', {}, 'Destination'), h('dd', {}, dest.name)),
      h('div', { class: 'actions' }, run), out,
    ], () => { if (validated()) show(4); }, 'Review');
    const next = f.querySelector('button[type=submit]');
    next.disabled = !validated();
    renderResult();
    return f;
  }

  function reviewStep() {
    const req = request();
    const start = h('button', { type: 'submit', class: 'primary', id: 'start-migration' }, 'Start migration');
    const msg = h('div', {});
    const f = h('form', { novalidate: true },
      h('dl', { class: 'facts', id: 'review' },
        h('dt', {}, 'Source deployment'), h('dd', {}, `${st.deployment} (project ${srcProject().name})`),
        h('dt', {}, 'Migration host'), h('dd', {}, st.host),
        h('dt', {}, 'Destination cluster'), h('dd', {}, `${dest.name} (project ${project.name})`),
        h('dt', {}, 'Connection'), h('dd', {}, CONNECTIONS.find((c) => c.value === st.connection).label),
        h('dt', {}, 'Authentication'), h('dd', {}, st.managed ? 'managed by the migration host' : `user ${st.username}, password set`),
        h('dt', {}, 'TLS'), h('dd', {}, st.ssl ? `on${st.caPath ? `, CA file ${st.caPath}` : ''}` : 'off'),
        h('dt', {}, 'Sharding'), h('dd', {}, 'none (sharded destinations are not supported yet)'),
        h('dt', {}, 'Existing destination data'), h('dd', {}, st.drop ? h('strong', {}, 'deleted before the copy') : 'kept'),
        h('dt', {}, 'Verification at cutover'), h('dd', {}, verificationModes.find(([v]) => v === st.verification)[1]),
        h('dt', {}, 'Validation'), h('dd', {}, statusBadge(st.validation.status))),
      h('p', {}, 'After the start, the migration copies the data and then applies changes continuously. When it is ready, you have 120 hours to cut over.'),
      msg, h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => show(3) }, 'Back'), start,
        h('a', { class: 'button', href: `#/groups/${groupId}` }, 'Cancel')));
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      start.disabled = true;
      replace(msg);
      try {
        const m = await api.createMigration(groupId, request());
        sessionStorage.setItem(`lm:${m._id}`, JSON.stringify({ source: st.deployment, destination: dest.name, host: st.host }));
        page.go(`/groups/${groupId}/migrations/${m._id}`);
      } catch (e) {
        replace(msg, errorBox(e, 'start the migration'));
        start.disabled = false;
      }
    });
    return f;
  }

  show(0);
}
