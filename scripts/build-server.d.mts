/** The bundled server: `node dist/server.js`. */
export declare const SERVER_JS: string;
/** Where the bundle goes. */
export declare const DIST: string;
/** Builds dist/server.js unless it is up to date (inputs' hash unchanged). */
export declare function buildServer(opts?: { force?: boolean; quiet?: boolean }): Promise<{ built: boolean; ms: number; hash: string }>;
