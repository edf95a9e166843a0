import type { TestProject } from 'vitest/node';
import type { EmbeddedEndpoint } from './embedded.ts';
import { startTestEmbedded, startThrowawayCluster } from './test-postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the Postgres server (reached like DATABASE_URL) the tests create their databases in. */
    postgresUrl: string;
    /** The test run's embedded Postgres server (Unix socket, password), holding a migrated template database. */
    embeddedDb: EmbeddedEndpoint;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.TEST_DATABASE_URL;
  const [cluster, embedded] = await Promise.all([given ? null : startThrowawayCluster(), startTestEmbedded()]);
  project.provide('postgresUrl', given ?? cluster!.url);
  project.provide('embeddedDb', embedded.endpoint);
  return async () => {
    cluster?.stop();
    await embedded.close();
  };
}
