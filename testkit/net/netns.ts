/**
 * A network namespace joined to the host by a veth pair, for peers that need a
 * real (kernel) link: a bandwidth cap with a bounded queue (`tc tbf` on each
 * end: netem does not exist in this kernel, see `UdpRelay` for loss, delay and
 * jitter), or a non-loopback address (Firefox pairs no ICE candidates over
 * loopback, so a relay on `hostAddress` gives it a server it will talk to).
 *
 * Both ends get addresses in a private /30 picked at random inside
 * 10.214.0.0/16; nothing is routed beyond the pair. A browser runs inside the
 * namespace through `wrapExecutable`; the host's loopback services are reached
 * from inside through `forwardTcp` and UDP relays listening on `hostAddress`.
 * Needs root (`ip netns`, `tc`). `close()` deletes the namespace (and with it
 * the veth pair); namespaces left by a crashed test process are removed by the
 * next `create()`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PREFIX = 'wcns';

async function ip(...args: string[]): Promise<string> {
  try {
    return (await run('ip', args)).stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('ip not found: the test command installs it (Debian package iproute2)');
    throw new Error(`ip ${args.join(' ')}: ${e.stderr?.trim() ?? e.message}`);
  }
}

async function tc(...args: string[]): Promise<void> {
  try {
    await run('tc', args);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    throw new Error(`tc ${args.join(' ')}: ${e.stderr?.trim() ?? e.message}`);
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Deletes namespaces this helper made in processes that are gone. */
async function sweepStale(): Promise<void> {
  const list = await ip('netns', 'list').catch(() => '');
  for (const line of list.split('\n')) {
    const m = new RegExp(`^(${PREFIX}(\\d+)x\\d+)\\b`).exec(line);
    if (m && !alive(Number(m[2]))) await ip('netns', 'del', m[1]!).catch(() => {});
  }
}

export interface LinkCap {
  /** Rate, kbit/s. */
  kbps: number;
  /** Queue before tail drop, bytes (default: 100 ms at the rate, at least 6 kB). */
  queueBytes?: number;
}

export interface NetnsOptions {
  /** Cap on what the namespace receives (host → namespace). */
  down?: LinkCap;
  /** Cap on what the namespace sends (namespace → host). */
  up?: LinkCap;
}

const open = new Set<NetworkNamespace>();
let exitHook = false;

export class NetworkNamespace {
  #closed = false;
  #servers: Server[] = [];
  #sockets = new Set<Socket>();
  #dir: string;

  private constructor(
    /** Namespace name (`ip netns exec <name> …`). */
    readonly name: string,
    /** Host end of the veth pair. */
    readonly hostIf: string,
    /** Address of the host end: where the namespace reaches the host. */
    readonly hostAddress: string,
    /** Address of the namespace end. */
    readonly nsAddress: string,
    dir: string,
  ) {
    this.#dir = dir;
  }

  /** Creates the namespace, the veth pair, their addresses and the caps. */
  static async create(opts: NetnsOptions = {}): Promise<NetworkNamespace> {
    await sweepStale();
    const id = `${process.pid}x${randomInt(0, 1e6)}`;
    const name = `${PREFIX}${id}`;
    // Interface names are at most 15 characters.
    const tag = randomInt(0, 36 ** 6)
      .toString(36)
      .padStart(6, '0');
    const hostIf = `wch${tag}`;
    const nsIf = `wcn${tag}`;
    const used = await ip('-4', 'addr');
    let subnet = 0;
    for (let tries = 0; tries < 50; tries++) {
      subnet = randomInt(0, 16384) * 4;
      if (!used.includes(`10.214.${subnet >> 8}.${(subnet & 255) + 1}/`)) break;
    }
    const hostAddress = `10.214.${subnet >> 8}.${(subnet & 255) + 1}`;
    const nsAddress = `10.214.${subnet >> 8}.${(subnet & 255) + 2}`;
    await ip('netns', 'add', name);
    const dir = await mkdtemp(join(tmpdir(), 'whipcast-netns-'));
    const ns = new NetworkNamespace(name, hostIf, hostAddress, nsAddress, dir);
    open.add(ns);
    if (!exitHook) {
      exitHook = true;
      // Last resort when a test forgets close() or the process exits on an error.
      process.once('exit', () => {
        for (const n of open) n.#deleteSync();
      });
    }
    try {
      await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', name);
      await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostIf);
      await ip('link', 'set', hostIf, 'up');
      await ip('-n', name, 'addr', 'add', `${nsAddress}/30`, 'dev', nsIf);
      await ip('-n', name, 'link', 'set', nsIf, 'up');
      await ip('-n', name, 'link', 'set', 'lo', 'up');
      await ip('-n', name, 'route', 'add', 'default', 'via', hostAddress);
      ns.#nsIf = nsIf;
      if (opts.down) await ns.setCap('down', opts.down);
      if (opts.up) await ns.setCap('up', opts.up);
    } catch (err) {
      await ns.close();
      throw err;
    }
    return ns;
  }

  #nsIf = '';

  /** Sets (or with null removes) the cap of one direction: tbf on the sending end. */
  async setCap(direction: 'down' | 'up', cap: LinkCap | null): Promise<void> {
    const target = direction === 'down' ? ['dev', this.hostIf] : ['dev', this.#nsIf];
    const netns = direction === 'down' ? [] : ['-n', this.name];
    await tc(...netns, 'qdisc', 'del', ...target, 'root').catch(() => {});
    if (!cap) return;
    const bytesPerSec = (cap.kbps * 1000) / 8;
    const limit = Math.max(6000, Math.round(cap.queueBytes ?? bytesPerSec / 10));
    // burst: enough for one timer tick at the rate, and at least a few full packets.
    const burst = Math.max(4500, Math.round(bytesPerSec / 250));
    await tc(...netns, 'qdisc', 'add', ...target, 'root', 'tbf', 'rate', `${cap.kbps}kbit`, 'burst', String(burst), 'limit', String(limit));
  }

  /** Packets and bytes sent and dropped by a direction's cap (`tc -s`). */
  async capStats(direction: 'down' | 'up'): Promise<{ sentBytes: number; sentPackets: number; dropped: number }> {
    const args =
      direction === 'down' ? ['-s', 'qdisc', 'show', 'dev', this.hostIf] : ['-n', this.name, '-s', 'qdisc', 'show', 'dev', this.#nsIf];
    const { stdout } = await run('tc', args);
    const m = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+)/.exec(stdout);
    return { sentBytes: Number(m?.[1] ?? 0), sentPackets: Number(m?.[2] ?? 0), dropped: Number(m?.[3] ?? 0) };
  }

  /**
   * A script that runs `executable` inside the namespace with the same
   * arguments: pass it as a browser's executable path.
   */
  async wrapExecutable(executable: string): Promise<string> {
    const path = join(this.#dir, `in-${this.name}-${executable.split('/').pop()}`);
    await writeFile(path, `#!/bin/sh\nexec ip netns exec ${this.name} ${executable} "$@"\n`);
    await chmod(path, 0o755);
    return path;
  }

  /**
   * Forwards TCP connections made to `hostAddress:<returned port>` (from inside
   * the namespace) to `host:port` on the host (default 127.0.0.1): how a peer
   * inside reaches the HTTP server and its WebSocket.
   */
  async forwardTcp(port: number, host = '127.0.0.1'): Promise<number> {
    const server = createServer((inbound) => {
      const outbound = connect(port, host);
      for (const s of [inbound, outbound]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, this.hostAddress, () => resolve());
    });
    this.#servers.push(server);
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('forwarder has no port');
    return addr.port;
  }

  #deleteSync(): void {
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }

  /** Stops the forwarders and deletes the namespace and its veth pair; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
    await Promise.all(this.#servers.map((s) => new Promise((r) => s.close(r))));
    await ip('netns', 'del', this.name).catch(() => {});
    // Deleting the namespace destroys its veth end, which removes the host end with it.
    await ip('link', 'del', this.hostIf).catch(() => {});
    await rm(this.#dir, { recursive: true, force: true });
    open.delete(this);
  }
}
