export { startWhipcast, type Whipcast, type StartOptions } from './server.ts';
export { loadConfig, SETTINGS, renderConfigDocs, type Config } from './config.ts';
export type { MediaDeps, MediaLayer } from './media.ts';
/** The uWebSockets.js server alone (benchmarks compare whipcast's chat with a bare publish through it). */
export { startServer, type RunningServer, type ServerOptions, type SocketHandle, type WebSocketOptions } from './uws.ts';
export type { Route, RouteContext, Handler, RouteDoc } from './http/types.ts';
/** The cluster bus over Postgres LISTEN/NOTIFY (the bus benchmark drives it at cluster sizes). */
export { postgresBus, type ClusterBus } from './cluster/bus.ts';
