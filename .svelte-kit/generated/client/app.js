// in dev, this makes Vite inject its client as this module's first dependency,
// so that global constant replacements are installed before any other module
// (including user hooks) evaluates. In build it's inert.
import.meta.hot;

export { matchers } from './matchers.js';

export const nodes = [() => import('./nodes/0'), () => import('./nodes/1')];

export const server_loads = [];

export const dictionary = {};

export const hooks = {
  handleError: ({ error }) => {
    console.error(error);
  },

  reroute: () => {},
  transport: {},
};

export const decoders = Object.fromEntries(Object.entries(hooks.transport).map(([k, v]) => [k, v.decode]));
export const encoders = Object.fromEntries(Object.entries(hooks.transport).map(([k, v]) => [k, v.encode]));

export const hash = false;

export const decode = (type, value) => decoders[type](value);

export { default as root } from '../root.js';

export const get_error_template = () => import('../shared/error-template.js').then((m) => m.default);
