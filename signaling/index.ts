export { startWhipcast, type Whipcast, type StartOptions, type MediaDeps } from './server.ts';
export { loadConfig, SETTINGS, renderConfigDocs, type Config } from './config.ts';
export type { MediaLayer } from './media.ts';
export type { Route, RouteContext, Handler, RouteDoc } from './http/types.ts';
