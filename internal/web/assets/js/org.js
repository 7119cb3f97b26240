// The Live Migration page of an organization: the link token (shown once),
// the migration hosts (agents) and the source deployments they report.

import * as api from './api.js';
import { h, replace, field, errorBox, table, badge, fmtAgo, fmtTime, fmtBytes, announce, crumbs, MIB } from './dom.js';

export async function render(main, { orgId }, page) {
  let org;
  try {
    org = await api.org(orgId);
  } catch (e) {
    replace(main, h('h1', {}, 'Live Migration'), errorBox(e, 'open this organization'));
    return;
  }
  if (!page.alive()) return;

  const tokenArea = h('div', { id: 'token-area' });
  const agentsArea = h('div', { id: 'agents-area', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const heldArea = h('div', { id: 'held-registrations' });
  const agentNote = h('div', { id: 'agent-action', role: 'status' });
  const deploymentsArea = h('div', { id: 'deployments-area' }, h('p', { class: 'muted' }, 'Loading…'));
  const projectsArea = h('div', {});

  const ips = h('input', { type: 'text', name: 'accessListIps', placeholder: 'e.g. 203.0.113.7, 10.0.0.0/24', spellcheck: 'false' });
  const ipsField = field('Access list (optional)', ips, 'IP addresses or CIDR ranges the migration hosts connect from, separated by commas. Empty allows any address.');
  const genButton = h('button', { type: 'button', class: 'primary', id: 'generate-token' }, 'Generate link token');
  const delButton = h('button', { type: 'button', class: 'danger', id: 'delete-token' }, 'Delete link token');

  genButton.addEventListener('click', async () => {
    const list = ips.value.split(',').map((s) => s.trim()).filter(Boolean);
    genButton.disabled = true;
    replace(tokenArea);
    try {
      const { linkToken } = await api.createLinkToken(orgId, list);
      showToken(tokenArea, linkToken);
      announce('Link token generated. Copy it now: it is shown only once.');
      refresh();
    } catch (e) {
      replace(tokenArea, errorBox(e, 'generate the link token'));
    } finally {
      genButton.disabled = false;
    }
  });

  const confirmDelete = h('dialog', { 'aria-labelledby': 'del-h' },
    h('h2', { id: 'del-h' }, 'Delete the link token?'),
    h('p', {}, 'Every migration host of this organization is disconnected and must be linked again with a new token. Running migrations on those hosts stop.'),
    h('form', { method: 'dialog', class: 'actions' },
      h('button', { value: 'cancel', autofocus: true }, 'Keep it'),
      h('button', { value: 'delete', class: 'danger', id: 'confirm-delete-token' }, 'Delete link token')));
  confirmDelete.addEventListener('close', async () => {
    if (confirmDelete.returnValue !== 'delete') return;
    try {
      await api.deleteLinkToken(orgId);
      replace(tokenArea, h('div', { class: 'alert ok', role: 'status' }, 'The link token is deleted and its migration hosts are disconnected.'));
      refresh();
    } catch (e) {
      replace(tokenArea, errorBox(e, 'delete the link token'));
    }
  });
  delButton.addEventListener('click', () => { confirmDelete.returnValue = ''; confirmDelete.showModal(); });

  // Revoking one migration host: confirmed in a dialog; the call carries the
  // session's CSRF token like every other change.
  let revoking = null;
  const revokeText = h('p', {});
  const confirmRevoke = h('dialog', { 'aria-labelledby': 'revoke-h', id: 'revoke-dialog' },
    h('h2', { id: 'revoke-h' }, 'Revoke this migration host?'),
    revokeText,
    h('form', { method: 'dialog', class: 'actions' },
      h('button', { value: 'cancel', autofocus: true }, 'Keep it'),
      h('button', { value: 'revoke', class: 'danger', id: 'confirm-revoke-agent' }, 'Revoke migration host')));
  confirmRevoke.addEventListener('close', async () => {
    if (confirmRevoke.returnValue !== 'revoke' || !revoking) return;
    const a = revoking;
    revoking = null;
    try {
      await api.revokeAgent(orgId, a.id);
      replace(agentNote, h('div', { class: 'alert ok' }, `Migration host ${a.hostname} is revoked: it is refused from its next call.`));
      refresh();
    } catch (e) {
      replace(agentNote, errorBox(e, `revoke migration host ${a.hostname}`));
    }
  });
  const onRevoke = (a) => {
    revoking = a;
    revokeText.textContent = `${a.hostname} is refused from its next call and gets no more work or secrets; its unfinished migrations fail. ` +
      'Starting it again needs your approval here.';
    confirmRevoke.returnValue = '';
    confirmRevoke.showModal();
  };
  const onDecide = async (r, approve) => {
    try {
      await (approve ? api.approveRegistration(orgId, r.id) : api.rejectRegistration(orgId, r.id));
      replace(agentNote, h('div', { class: 'alert ok' }, approve
        ? `Registration of ${r.hostname} approved: that host is now its migration host${r.agentId ? ' and the previous one is refused' : ''}.`
        : `Registration of ${r.hostname} rejected.`));
      refresh();
    } catch (e) {
      replace(agentNote, errorBox(e, `${approve ? 'approve' : 'reject'} the registration of ${r.hostname}`));
    }
  };

  replace(main,
    crumbs(org.name),
    h('h1', {}, 'Live Migration'),
    h('section', { class: 'card', 'aria-labelledby': 'link-h' },
      h('h2', { id: 'link-h' }, 'Link token'),
      h('p', {}, 'A migration host runs ', h('code', {}, 'livemigrate agent'), ' next to your source deployment. ',
        'The link token connects it to this organization. Generating a new token replaces the previous one.'),
      ipsField,
      h('div', { class: 'actions' }, genButton, delButton),
      tokenArea, confirmDelete),
    h('section', { class: 'card', 'aria-labelledby': 'agents-h' },
      h('h2', { id: 'agents-h' }, 'Migration hosts'), agentNote, heldArea, agentsArea, confirmRevoke),
    h('section', { class: 'card', 'aria-labelledby': 'dep-h' },
      h('h2', { id: 'dep-h' }, 'Source deployments'), deploymentsArea),
    h('section', { class: 'card', 'aria-labelledby': 'proj-h' },
      h('h2', { id: 'proj-h' }, 'Destination projects'),
      h('p', {}, 'Open a project and choose “Migrate data to this cluster” on a destination cluster.'), projectsArea));

  api.projects().then((ps) => {
    if (!page.alive()) return;
    ps = ps.filter((p) => p.orgId === orgId);
    replace(projectsArea, ps.length
      ? h('ul', {}, ps.map((p) => h('li', {}, h('a', { href: `#/groups/${p.id}`, 'data-project': p.name }, p.name))))
      : h('p', { class: 'muted' }, 'No projects.'));
  }, (e) => page.alive() && replace(projectsArea, errorBox(e, 'list projects')));

  async function refresh() {
    const [ag, av, held] = await Promise.allSettled([api.agents(orgId), api.availableProjects(orgId), api.agentRegistrations(orgId)]);
    if (!page.alive()) return;
    agentsArea.removeAttribute('aria-busy');
    if (ag.status === 'rejected') replace(agentsArea, errorBox(ag.reason, 'list migration hosts'));
    else replace(agentsArea, renderAgents(ag.value, onRevoke));
    // Held registrations are for owners; others get 403 and see none.
    replace(heldArea, held.status === 'fulfilled' ? renderHeld(held.value, onDecide) : null);
    if (av.status === 'rejected') {
      const e = av.reason;
      replace(deploymentsArea, e instanceof api.ApiError && e.status === 403
        ? h('div', { class: 'alert warn', 'data-error': 'FORBIDDEN' }, 'Only organization owners and project owners can see source deployments.')
        : errorBox(e, 'list source deployments'));
    } else {
      replace(deploymentsArea, renderDeployments(av.value));
    }
  }
  await refresh();
  const timer = setInterval(refresh, 3000);
  return () => clearInterval(timer);
}

function showToken(area, token) {
  const out = h('p', { class: 'token', id: 'link-token', tabindex: '0', 'aria-label': 'Link token' }, token);
  const copied = h('span', { role: 'status', class: 'muted' });
  const copy = h('button', { type: 'button', id: 'copy-token' }, 'Copy token');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(token);
      copied.textContent = 'Copied to the clipboard.';
    } catch {
      const range = document.createRange();
      range.selectNodeContents(out);
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
      copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });
  replace(area, h('div', { class: 'alert warn', role: 'alert', 'aria-labelledby': 'tok-h' },
    h('h3', { id: 'tok-h' }, 'Copy this link token now'),
    h('p', {}, h('strong', {}, 'It is never shown again. '), 'If you lose it, generate a new one (the old one stops working). Treat it like a password.'),
    out,
    h('div', { class: 'row' }, copy, copied)),
  agentCommand());
  copy.focus();
}

/** passwordEnv is the agent's password variable of a source (agent.PasswordEnv). */
export const passwordEnv = (name) => `LIVEMIGRATE_SOURCE_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PASSWORD`;

/**
 * agentCommand shows the commands that start the migration host, filled in
 * from the source the user names. The token is read from the terminal
 * (never put on a command line or in the shell history).
 */
function agentCommand() {
  const name = h('input', { type: 'text', name: 'agentSourceName', value: 'rs0', spellcheck: 'false', autocomplete: 'off' });
  const uri = h('input', { type: 'text', name: 'agentSourceURI', value: 'mongodb://user@localhost:27017/?replicaSet=rs0', spellcheck: 'false', autocomplete: 'off' });
  const fName = field('Source name', name, 'How the deployment is listed here (letters, digits, - and _).');
  const fURI = field('Source connection string (without the password)', uri, 'As the migration host reaches the source.');
  const cmd = h('pre', { class: 'command', id: 'agent-command', tabindex: '0', 'aria-label': 'Commands to run on the migration host' });
  const copied = h('span', { role: 'status', class: 'muted' });
  const copy = h('button', { type: 'button', id: 'copy-command' }, 'Copy commands');
  const fill = () => {
    const n = name.value.trim() || 'rs0';
    const ok = /^[A-Za-z0-9_-]+$/.test(n);
    fName.setError(ok ? '' : 'Use letters, digits, - and _ only.');
    const u = uri.value.trim();
    const okURI = /^mongodb(\+srv)?:\/\/[^\s']+$/.test(u) && !/:\/\/[^/@]*:[^/@]*@/.test(u);
    fURI.setError(okURI ? '' : 'Give a mongodb:// or mongodb+srv:// connection string without a password and without quotes or spaces.');
    const hasUser = /:\/\/[^/@]+@/.test(u);
    cmd.textContent = [
      "read -rsp 'Link token: ' LIVEMIGRATE_LINK_TOKEN && echo && export LIVEMIGRATE_LINK_TOKEN",
      hasUser ? `read -rsp 'Password of the source user: ' ${passwordEnv(n)} && echo && export ${passwordEnv(n)}` : null,
      `livemigrate agent --source '${n}=${u}'`,
    ].filter(Boolean).join('\n');
  };
  name.addEventListener('input', fill); uri.addEventListener('input', fill);
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(cmd.textContent); copied.textContent = 'Copied to the clipboard.'; } catch {
      const range = document.createRange(); range.selectNodeContents(cmd);
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(range);
      copied.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });
  fill();
  return h('section', { class: 'alert info', 'aria-labelledby': 'cmd-h', id: 'agent-setup' },
    h('h3', { id: 'cmd-h' }, 'Start the migration host'),
    h('p', {}, 'On the host next to your source deployment, run these commands in a shell and paste the link token (and the source password) when asked. ',
      'The token comes from ', h('code', {}, '$LIVEMIGRATE_LINK_TOKEN'), ' or ', h('code', {}, '--link-token-file PATH'),
      ' (a file holding only the token); the password from ', h('code', {}, '$LIVEMIGRATE_SOURCE_<NAME>_PASSWORD'), ' or ',
      h('code', {}, '--source-password-file NAME=PATH'), '. Repeat ', h('code', {}, '--source'), ' for more deployments.'),
    h('div', { class: 'grid' }, fName, fURI), cmd, h('div', { class: 'row' }, copy, copied));
}


function renderHeld(regs, onDecide) {
  if (!regs.length) return null;
  return h('div', { class: 'alert warn', role: 'alert', 'aria-labelledby': 'held-h' },
    h('h3', { id: 'held-h' }, 'Registrations waiting for your approval'),
    h('p', {}, 'These hosts registered with the link token under a hostname that already has a migration host (or one you revoked), without its credential. ',
      'They got nothing. Approve one only if you replaced that host; otherwise reject it and generate a new link token: someone else holds it.'),
    table('Held registrations', [{ label: 'Hostname' }, { label: 'From' }, { label: 'When' }, { label: 'Why' }, { label: 'Decision' }],
      regs, (r) => {
        const approve = h('button', { type: 'button', class: 'primary', 'data-approve': r.id }, 'Approve');
        const reject = h('button', { type: 'button', class: 'danger', 'data-reject': r.id }, 'Reject');
        approve.addEventListener('click', () => { approve.disabled = reject.disabled = true; onDecide(r, true); });
        reject.addEventListener('click', () => { approve.disabled = reject.disabled = true; onDecide(r, false); });
        return h('tr', { 'data-registration': r.id },
          h('th', { scope: 'row' }, r.hostname),
          h('td', {}, r.remoteAddress),
          h('td', {}, fmtTime(r.createdAt)),
          h('td', {}, r.reason),
          h('td', {}, h('div', { class: 'row' }, approve, reject)));
      }));
}

function renderAgents(agents, onRevoke) {
  if (!agents.length) {
    return h('p', { id: 'no-agents' }, 'No migration host is linked. Generate a link token and start ', h('code', {}, 'livemigrate agent'), ' with it.');
  }
  return table('Migration hosts of this organization',
    [{ label: 'Hostname' }, { label: 'Status' }, { label: 'Last heartbeat' }, { label: 'Version' }, { label: 'Linked' }, { label: 'Actions' }],
    agents, (a) => h('tr', { 'data-agent': a.hostname },
      h('th', { scope: 'row' }, a.hostname),
      h('td', {}, a.lost ? badge('Lost', 'bad') : badge('Online', 'ok'),
        a.lost ? h('span', { class: 'hint' }, ' missed its heartbeats; check the host and its network') : null),
      h('td', {}, h('time', { datetime: a.lastSeenAt, title: fmtTime(a.lastSeenAt) }, fmtAgo(a.lastSeenAt))),
      h('td', {}, a.version || '—'),
      h('td', {}, fmtTime(a.registeredAt)),
      h('td', {}, revokeButton(a, onRevoke))));
}

function revokeButton(a, onRevoke) {
  const b = h('button', { type: 'button', class: 'danger', 'data-revoke': a.id, 'aria-label': `Revoke ${a.hostname}` }, 'Revoke');
  b.addEventListener('click', () => onRevoke(a));
  return b;
}

function renderDeployments(projects) {
  const rows = [];
  for (const p of projects) for (const d of p.deployments) rows.push({ p, d });
  if (!rows.length) {
    return h('p', {}, 'No source deployment is reported yet. A linked migration host reports the deployments it can reach.');
  }
  return table('Source deployments the migration hosts reach (data size: the user databases, as validation reports it)',
    [{ label: 'Deployment' }, { label: 'MongoDB' }, { label: 'Topology' }, { label: 'Data size', num: true }, { label: 'Oplog', num: true }, { label: 'TLS' }, { label: 'Migration hosts' }],
    rows, ({ p, d }) => d.unreachable ? h('tr', { 'data-deployment': d.name, 'data-unreachable': '' },
      h('th', { scope: 'row' }, d.name),
      h('td', { colspan: 5 }, badge('Unreachable', 'bad'), ' ', h('span', { class: 'unreachable-reason' }, d.unreachable),
        h('p', { class: 'hint' }, 'The migration host cannot reach this deployment, so its version and size are unknown. Check the --source connection string, the password, TLS and the network from the migration host, then restart livemigrate agent.')),
      h('td', {}, p.migrationHosts.join(', ')))
      : h('tr', { 'data-deployment': d.name },
      h('th', { scope: 'row' }, d.name),
      h('td', {}, `${d.mongoDBVersion || '—'} (FCV ${d.featureCompatibilityVersion || '—'})`),
      h('td', {}, d.sharded ? `sharded, ${d.shardsSize} shards` : 'replica set'),
      h('td', { class: 'num' }, fmtBytes(d.dbSizeBytes)),
      h('td', { class: 'num' }, fmtBytes(d.oplogSizeMB * MIB)),
      h('td', {}, d.tlsEnabled ? 'yes' : 'no'),
      h('td', {}, p.migrationHosts.join(', '))));
}
