// The Admin API client of the web UI. Every call goes to the same endpoints
// the CLI uses; the browser session cookie (HttpOnly, SameSite=Strict)
// authenticates, and state-changing calls carry the session's CSRF token.

const atlas = '/api/atlas/v2';

/** ApiError is an error response of the control plane (the Atlas envelope). */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

let csrfToken = '';
let current = null; // the api.Session of the signed-in user

/** session returns the signed-in user's session, or null. */
export function session() { return current; }

/** setSession remembers a session (after sign-in or GET /api/session). */
export function setSession(s) {
  current = s;
  csrfToken = s ? s.csrfToken : '';
}

/** call sends one request and returns the decoded JSON body (or null). */
export async function call(method, path, body) {
  // X-Requested-With: the server then answers 401 without a Basic
  // challenge, so the browser does not open its own password prompt.
  const headers = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'NETWORK_ERROR', 'The control plane cannot be reached. Check your network connection and that livemigrate server is running.');
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data && data.errorCode, (data && data.detail) || text.trim() || resp.statusText);
    if (resp.status === 401 && path !== '/api/session') {
      setSession(null);
      window.dispatchEvent(new CustomEvent('lm:unauthenticated', { detail: err }));
    }
    throw err;
  }
  return data;
}

const enc = encodeURIComponent;

// Sessions.
export const login = (username, password) => call('POST', '/api/session', { username, password });
export const whoami = () => call('GET', '/api/session');
export const logout = () => call('DELETE', '/api/session');

// Identity.
export const orgs = async () => (await call('GET', `${atlas}/orgs`)).results;
export const org = (orgId) => call('GET', `${atlas}/orgs/${enc(orgId)}`);
export const projects = async () => (await call('GET', `${atlas}/groups`)).results;
export const project = (groupId) => call('GET', `${atlas}/groups/${enc(groupId)}`);
export const clusters = async (groupId) => (await call('GET', `${atlas}/groups/${enc(groupId)}/clusters`)).results;
export const createCluster = (groupId, req) => call('POST', `${atlas}/groups/${enc(groupId)}/clusters`, req);
export const cluster = (groupId, name) => call('GET', `${atlas}/groups/${enc(groupId)}/clusters/${enc(name)}`);

// Live migration: link token, agents, source deployments.
export const createLinkToken = (orgId, accessListIps) =>
  call('POST', `${atlas}/orgs/${enc(orgId)}/liveMigrations/linkTokens`, { accessListIps });
export const deleteLinkToken = (orgId) => call('DELETE', `${atlas}/orgs/${enc(orgId)}/liveMigrations/linkTokens`);
export const availableProjects = (orgId) => call('GET', `${atlas}/orgs/${enc(orgId)}/liveMigrations/availableProjects`);
export const agents = async (orgId) => (await call('GET', `${atlas}/orgs/${enc(orgId)}/liveMigrations/x-agents`)).results;
export const revokeAgent = (orgId, agentId) => call('DELETE', `${atlas}/orgs/${enc(orgId)}/liveMigrations/x-agents/${enc(agentId)}`);
export const agentRegistrations = async (orgId) =>
  (await call('GET', `${atlas}/orgs/${enc(orgId)}/liveMigrations/x-agentRegistrations?status=PENDING`)).results;
export const approveRegistration = (orgId, id) => call('POST', `${atlas}/orgs/${enc(orgId)}/liveMigrations/x-agentRegistrations/${enc(id)}/x-approve`);
export const rejectRegistration = (orgId, id) => call('POST', `${atlas}/orgs/${enc(orgId)}/liveMigrations/x-agentRegistrations/${enc(id)}/x-reject`);

// Live migrations of a destination project.
const lm = (groupId) => `${atlas}/groups/${enc(groupId)}/liveMigrations`;
export const validate = (groupId, req) => call('POST', `${lm(groupId)}/validate`, req);
export const validation = (groupId, id) => call('GET', `${lm(groupId)}/validate/${enc(id)}`);
export const validationChecks = (groupId, id) => call('GET', `${lm(groupId)}/validate/${enc(id)}/x-checks`);
export const createMigration = (groupId, req) => call('POST', lm(groupId), req);
export const migrations = async (groupId) => (await call('GET', lm(groupId))).results;
export const migration = (groupId, id) => call('GET', `${lm(groupId)}/${enc(id)}`);
export const progress = (groupId, id) => call('GET', `${lm(groupId)}/${enc(id)}/x-progress`);
export const events = async (groupId, id) => (await call('GET', `${lm(groupId)}/${enc(id)}/x-events`)).results;
export const report = (groupId, id) => call('GET', `${lm(groupId)}/${enc(id)}/x-report`);
export const cutover = (groupId, id) => call('PUT', `${lm(groupId)}/${enc(id)}/cutover`);
export const extend = (groupId, id) => call('POST', `${lm(groupId)}/${enc(id)}/x-extend`);
export const cancel = (groupId, id) => call('POST', `${lm(groupId)}/${enc(id)}/x-cancel`);
