import type { TestProject } from 'vitest/node';
import { startThrowawayCluster } from './test-postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the Postgres server the tests create their databases in. */
    postgresUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const given = process.env.TEST_DATABASE_URL;
  const cluster = given ? null : await startThrowawayCluster();
  project.provide('postgresUrl', given ?? cluster!.url);
  return () => cluster?.stop();
}
