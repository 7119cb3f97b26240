// Placeholder until this page is built.
import { h, replace } from './dom.js';

export async function render(main) {
  replace(main, h('h1', {}, 'Not built yet'));
}
