/** `npm start`: runs whipcast with configuration from the environment. */
import { ConfigError, loadConfig } from './config.ts';
import { startWhipcast } from './server.ts';
import { createSfuMedia } from './sfu-adapter.ts';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`whipcast: ${err.message}`);
    process.exit(2);
  }
  throw err;
}

const app = await startWhipcast(config, { media: createSfuMedia });
const shown = config.publicUrl ?? app.url.replace('127.0.0.1', 'localhost');
app.logger.info({ url: shown, port: app.port, database: app.db.kind }, `whipcast is up: open ${shown}`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) {
      app.logger.warn('second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    app.logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      app.logger.error('graceful shutdown timed out');
      process.exit(1);
    }, config.shutdownGraceMs);
    timer.unref();
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
