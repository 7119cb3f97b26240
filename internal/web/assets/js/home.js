// Organizations and their projects the signed-in user can see.

import * as api from './api.js';
import { h, replace, errorBox } from './dom.js';

export async function render(main, params, page) {
  let orgs, projects;
  try {
    [orgs, projects] = await Promise.all([api.orgs(), api.projects()]);
  } catch (e) {
    replace(main, h('h1', {}, 'Organizations'), errorBox(e, 'list your organizations'));
    return;
  }
  if (!page.alive()) return;
  replace(main, h('h1', {}, 'Organizations'),
    orgs.length === 0 ? h('p', {}, 'You have no role in any organization yet. Ask an organization owner to add you.') : null,
    orgs.map((o) => h('section', { class: 'card', 'aria-labelledby': `org-${o.id}` },
      h('h2', { id: `org-${o.id}` }, o.name),
      h('p', {}, h('a', { href: `#/orgs/${o.id}/live-migration`, class: 'button primary', 'data-org': o.id }, 'Live Migration')),
      h('h3', {}, 'Projects'),
      (() => {
        const ps = projects.filter((p) => p.orgId === o.id);
        return ps.length
          ? h('ul', {}, ps.map((p) => h('li', {}, h('a', { href: `#/groups/${p.id}`, 'data-project': p.name }, p.name))))
          : h('p', { class: 'muted' }, 'No projects you can see.');
      })())));
}
