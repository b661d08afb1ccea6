/**
 * A geo-redundant vault in object storage losing its primary site mid-life: the primary in Azure
 * Blob (Azurite), the secondary in S3 (s3rver) behind a link the test can cut. Several backups
 * replicate; one more lands while the link is down; then the primary's store is stopped. What
 * the server acknowledged as replicated must all be on the secondary, restorable and checkable,
 * the lag must say what was not, and failing over must work.
 */
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStore, type TestStore } from '../../src/backends/object-stores.testkit.js';
import {
  expectExit,
  killStartedProcesses,
  parseJson,
  PASSPHRASE,
  run,
  seededBytes,
  writeTree,
  type RunEnv,
} from './cli.testkit.js';
import { createDailyPolicy, poll, type ServerProcess, startServer } from './server.testkit.js';
import { diffTrees, snapshotTree, type TreeSnapshot } from './tree.testkit.js';

/** A TCP relay to one address: the link between two sites, which a test can cut and mend. */
class Link {
  #up = true;
  readonly #sockets = new Set<Socket>();
  private constructor(
    readonly server: Server,
    readonly url: string,
  ) {}

  /** Opens a relay on 127.0.0.1 to the host and port of `target` (an http:// URL). */
  static async open(target: string): Promise<Link> {
    const { hostname, port } = new URL(target);
    let link: Link | undefined;
    const server = createServer((client) => {
      if (!link!.#up) return void client.destroy();
      const upstream = connect(Number(port), hostname);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        link!.#sockets.add(a);
        a.pipe(b);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          link!.#sockets.delete(a);
          b.destroy();
        });
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the link has no port');
    link = new Link(server, `http://127.0.0.1:${address.port}`);
    return link;
  }

  /** Cuts every connection, and every new one as it comes. */
  cut(): void {
    this.#up = false;
    for (const socket of this.#sockets) socket.destroy();
  }

  mend(): void {
    this.#up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface PointView {
  id: string;
  time: string;
  tiers: string[];
}
interface Replication {
  lagSeconds: number;
  objectsBehind: number;
  bytesBehind: number;
  lastReplicatedAt: string | null;
  paused?: boolean;
}
interface JobView {
  id: string;
  state: string;
}

let root: string;
let primaryStore: TestStore;
let secondaryStore: TestStore;
let link: Link;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'holdfast-grs-e2e-'));
  [primaryStore, secondaryStore] = await Promise.all([
    startStore('azure', 'holdfast-site-a'),
    startStore('s3', 'holdfast-site-b'),
  ]);
  link = await Link.open(secondaryStore.env['AWS_ENDPOINT_URL']!);
});

afterAll(async () => {
  for (const server of servers.splice(0)) await server.stop().catch(() => undefined);
  killStartedProcesses();
  await link?.close();
  await Promise.all([primaryStore?.stop(), secondaryStore?.stop()]);
  rmSync(root, { recursive: true, force: true });
});

/** Jobs of `type` in `state`, through the API (cheap enough to poll). */
async function jobs(server: ServerProcess, type: string, state: string): Promise<JobView[]> {
  const answer = await server.api('GET', `/api/jobs?type=${type}&state=${state}`);
  if (answer.status !== 200) throw new Error(`listing jobs failed: ${JSON.stringify(answer)}`);
  return answer.body.data;
}

describe('a geo-redundant vault in object storage whose primary site is lost', () => {
  it('keeps every point acknowledged as replicated restorable from the secondary, reports the lag, and fails over', async () => {
    const source = join(root, 'source');
    const pass = { HOLDFAST_PASSWORD: PASSPHRASE };
    const primary = primaryStore.vault!;
    // The secondary's endpoint is in its location: the server reaches it only through the link.
    const secondary = `${secondaryStore.vault!}?endpoint=${link.url}`;
    const env: RunEnv = { ...primaryStore.env, ...secondaryStore.env, AWS_ENDPOINT_URL: undefined };
    // The clock moves only when the test says: a failed replication waits for its retry.
    const server = await startServer(join(root, 'data'), {
      fakeClock: '2026-01-05T00:30:00Z',
      env,
    });
    servers.push(server);
    const vault = await server.json<{ location: string; secondaryLocation: string }>(
      [
        ...['vault', 'create', 'geo', '--location', primary],
        ...['--redundancy', 'grs', '--secondary', secondary],
      ],
      pass,
    );
    expect(vault).toMatchObject({ location: primary, secondaryLocation: secondary });
    await createDailyPolicy(server);
    writeTree(source, { 'a.txt': 'alpha\n', 'b/c.bin': seededBytes(300_000, 'c') });
    await server.json(['protect', source, '--vault', 'geo', '--policy', 'p', '--name', 'docs']);

    // Two backups, each replicated: what the server then reports is the acknowledged state.
    const trees = new Map<string, TreeSnapshot>();
    const backUp = async (): Promise<string> => {
      await server.advance(60_000);
      const tree = snapshotTree(source);
      expectExit(['backup-now'], await server.cli(['backup-now', 'docs', '--wait']), 0);
      const listed = await server.api('GET', '/api/items/docs/points');
      const newest = (listed.body.data as PointView[]).at(-1)!;
      trees.set(newest.id, tree);
      return newest.id;
    };
    await backUp();
    await poll(
      async () => (await jobs(server, 'replicate', 'completed')).length === 1,
      60_000,
      'the first replication',
    );
    writeTree(source, { 'a.txt': 'alpha, changed\n', 'd/e.txt': 'echo\n'.repeat(5000) });
    await backUp();
    await poll(
      async () => (await jobs(server, 'replicate', 'completed')).length === 2,
      60_000,
      'the second replication',
    );
    const caughtUp = await server.json<{ replication: Replication }>([
      'vault',
      'replication',
      'geo',
    ]);
    expect(caughtUp.replication).toMatchObject({ objectsBehind: 0, bytesBehind: 0, lagSeconds: 0 });
    expect(caughtUp.replication.lastReplicatedAt).not.toBeNull();
    const acknowledged = await server.list<PointView>(['points', 'docs']);
    expect(acknowledged).toHaveLength(2);

    // The link goes down; a third backup lands on the primary only, its replication fails and
    // waits for a retry (a minute away on the server's clock, which the test holds).
    link.cut();
    unlinkSync(join(source, 'b/c.bin'));
    writeTree(source, { 'f.bin': seededBytes(250_000, 'f') });
    const unreplicated = await backUp();
    await poll(
      async () => (await jobs(server, 'replicate', 'waiting_retry')).length === 1,
      120_000,
      'the failed replication',
    );
    link.mend();
    await server.advance(30_000);
    const behind = await server.json<{ replication: Replication }>(['vault', 'replication', 'geo']);
    expect(behind.replication.objectsBehind).toBeGreaterThan(0);
    // At least f.bin, whose content is new and does not compress.
    expect(behind.replication.bytesBehind).toBeGreaterThanOrEqual(250_000);
    expect(behind.replication.lagSeconds).toBe(30);

    // Site A is lost: its store stops, its data gone with it.
    await primaryStore.stop();
    // Measuring now needs the primary: the answer names it as unreachable (or, should the
    // server answer from its last measure, still shows at least that lag) — in bounded time.
    const measured = await server.cli(['vault', 'replication', 'geo', '--json']);
    expect(measured.durationMs).toBeLessThan(60_000);
    if (measured.code === 0) {
      const view = parseJson<{ replication: Replication }>(['vault', 'replication'], measured);
      expect(view.replication.objectsBehind).toBeGreaterThanOrEqual(
        behind.replication.objectsBehind,
      );
    } else {
      expect(measured.code, measured.stderr).toBe(1);
      expect(measured.stderr).toContain(primary);
      expect(measured.stderr).toMatch(/\[BACKEND_(TRANSIENT|UNAVAILABLE)\]/);
    }
    // The vault keeps showing the last measure: what a failover now would lose.
    const shown = await server.json<{ replication: Replication }>(['vault', 'show', 'geo']);
    expect(shown.replication).toMatchObject({
      objectsBehind: behind.replication.objectsBehind,
      bytesBehind: behind.replication.bytesBehind,
      lagSeconds: 30,
      lastReplicatedAt: caughtUp.replication.lastReplicatedAt,
    });
    // The outstanding replication is retried against the lost primary: it fails, copies and
    // deletes nothing, and the lag keeps growing.
    await server.advance(60_000);
    let replicate: any;
    await poll(
      async () => {
        [replicate] = await jobs(server, 'replicate', 'waiting_retry,failed');
        return replicate?.attempts.length === 2;
      },
      120_000,
      'the retried replication',
    );
    expect(replicate.attempts.at(-1).error.code).toMatch(/^BACKEND_(TRANSIENT|UNAVAILABLE)$/);
    expect(replicate.attempts.at(-1).error.message).toContain(primary);
    const later = (await server.api('GET', '/api/vaults/geo')).body as { replication: Replication };
    expect(later.replication).toMatchObject({
      objectsBehind: behind.replication.objectsBehind,
      lagSeconds: 90,
    });

    // The secondary holds every acknowledged point, and only what reached it.
    const held = await server.list<PointView>(['points', 'docs', '--from', 'secondary']);
    expect(held.map((p) => p.id)).toEqual(acknowledged.map((p) => p.id));
    expect(held.map((p) => p.id)).not.toContain(unreplicated);
    for (const [i, point] of acknowledged.entries()) {
      const target = join(root, `restored-${i}`);
      const args = [
        ...['restore', 'docs', '--point', point.id, '--target', target],
        ...['--tier', 'vault', '--from', 'secondary', '--wait'],
      ];
      expectExit(args, await server.cli(args), 0);
      expect(
        diffTrees(trees.get(point.id)!, snapshotTree(join(target, source)), { dirMtimes: false }),
      ).toEqual([]);
    }
    const verify = [
      'vault',
      'verify',
      'geo',
      '--from',
      'secondary',
      '--read-data',
      '100',
      '--wait',
    ];
    expectExit(verify, await server.cli(verify), 0);
    // The bare CLI reads the copy too, with nothing but its location and the passphrase.
    const direct = { HOLDFAST_VAULT: secondary, ...pass, ...env };
    expectExit(['check'], await run(['check', '--read-data'], direct), 0);
    const copyPoints = parseJson<unknown[]>(
      ['points'],
      expectExit(['points'], await run(['points', '--json'], direct), 0),
    );
    expect(copyPoints).toHaveLength(acknowledged.length);

    // Failover: the secondary becomes the primary; backups and restores use it.
    const failedOver = await server.json<{
      location: string;
      secondaryLocation: string;
      replication: Replication;
    }>(['vault', 'failover', 'geo']);
    expect(failedOver).toMatchObject({ location: secondary, secondaryLocation: primary });
    expect(failedOver.replication.paused).toBe(true);
    writeTree(source, { 'g.txt': 'golf\n' });
    const afterFailover = await backUp();
    const target = join(root, 'restored-after-failover');
    const args = [
      ...['restore', 'docs', '--point', afterFailover, '--target', target],
      ...['--tier', 'vault', '--wait'],
    ];
    expectExit(args, await server.cli(args), 0);
    expect(
      diffTrees(trees.get(afterFailover)!, snapshotTree(join(target, source)), {
        dirMtimes: false,
      }),
    ).toEqual([]);
    // The bare CLI sees the new primary as the copy plus the new point.
    const nowPoints = parseJson<unknown[]>(
      ['points'],
      expectExit(['points'], await run(['points', '--json'], direct), 0),
    );
    expect(nowPoints).toHaveLength(acknowledged.length + 1);
  }, 300_000);
});
