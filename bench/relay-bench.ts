/**
 * The relay benchmark (several nodes): an origin and an edge node on one
 * Postgres; the same viewer steps join the origin directly (the baseline),
 * then the edge, which pulls the channel from the origin over a PipeTransport.
 * The difference is what a relay hop costs: latency, join time, CPU of the
 * two nodes together.
 */
import { randomBytes } from 'node:crypto';
import { startThrowawayCluster } from '@whipcast/db/test-postgres';
import { children } from './proc.ts';
import { prepareChannel, startServer, whipcastTarget, type BenchServer } from './server.ts';
import { runSfuBench, type SfuBenchOptions, type StepResult } from './sfu-bench.ts';

export interface RelayResult {
  /** Viewers on the origin itself. */
  origin: StepResult[];
  /** Viewers on the edge; CPU is both nodes'. */
  edge: StepResult[];
}

export interface RelayBenchOptions extends SfuBenchOptions {
  via: 'whep' | 'socket';
  /** A Postgres to use (an empty database); default a throwaway cluster (needs Debian's postgresql). */
  databaseUrl?: string | undefined;
  /** Called with the servers' pids once they run (CPU pinning). */
  onServers?(pids: number[]): void;
}

export async function runRelayBench(opts: RelayBenchOptions): Promise<RelayResult> {
  const cluster = opts.databaseUrl ? null : await startThrowawayCluster();
  const databaseUrl = opts.databaseUrl ?? cluster!.url;
  const env = {
    DATABASE_URL: databaseUrl,
    WHIPCAST_SECRET: randomBytes(32).toString('base64url'),
    NODE_URL: 'self',
    WHIP_RATE_LIMIT_PER_MINUTE: '100000',
  };
  const servers: BenchServer[] = [];
  try {
    const origin = await startServer({ ...env, NODE_ID: 'bench-origin' });
    servers.push(origin);
    const edge = await startServer({ ...env, NODE_ID: 'bench-edge' });
    servers.push(edge);
    const pids = (s: BenchServer) => (s.pid ? [s.pid] : []);
    const workers = (s: BenchServer) => (s.pid ? children(s.pid, /mediasoup/) : []);
    opts.onServers?.([...pids(origin), ...workers(origin), ...pids(edge), ...workers(edge)]);
    const ch = await prepareChannel(origin.url);
    const direct = await runSfuBench(whipcastTarget(origin, ch, { name: 'origin', via: opts.via }), opts);
    const relayed = await runSfuBench(
      {
        name: 'edge',
        url: edge.url,
        publishUrl: origin.url,
        streamId: ch.streamId,
        key: ch.key,
        via: opts.via,
        mainPids: [...pids(origin), ...pids(edge)],
        workerPids: () => [...workers(origin), ...workers(edge)],
      },
      opts,
    );
    return { origin: direct.steps, edge: relayed.steps };
  } finally {
    for (const s of servers.reverse()) await s.stop();
    cluster?.stop();
  }
}
