/** The bundled server: `node --max-semi-space-size=1 dist/server.js`. */
export declare const SERVER_JS: string;
/** Node flags of the start command (`npm start`, scripts/start.sh, the Docker image, test and bench processes). */
export declare const SERVER_NODE_FLAGS: readonly string[];
/** Where the bundle goes. */
export declare const DIST: string;
/** Builds dist/server.js unless it is up to date (inputs' hash unchanged). */
export declare function buildServer(opts?: { force?: boolean; quiet?: boolean }): Promise<{ built: boolean; ms: number; hash: string }>;
