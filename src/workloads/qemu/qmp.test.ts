import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHoldfastError } from '../../core/index.js';
import { QmpClient, QmpError } from './qmp.js';
import {
  ensureStorageDaemon,
  startStorageDaemon,
  type StorageDaemon,
} from './storage-daemon.testkit.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface BlockNode {
  readonly 'node-name': string;
  readonly drv: string;
  readonly 'dirty-bitmaps'?: ReadonlyArray<{ name: string; count: number; recording: boolean }>;
}

// Short, as UNIX socket paths are limited to 107 bytes.
const dir = mkdtempSync('/tmp/hf-qmp-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('QmpClient with qemu-storage-daemon', () => {
  const image = join(dir, 'disk.raw');
  let daemon: StorageDaemon | undefined;
  let client!: QmpClient;

  beforeAll(async () => {
    ensureStorageDaemon();
    writeFileSync(image, '');
    truncateSync(image, 4 * MiB);
    daemon = await startStorageDaemon(image, 'raw', dir);
    client = await QmpClient.connect(daemon.qmpSocket);
  });
  afterAll(async () => {
    await client?.close();
    await daemon?.stop();
  });

  /** The dirty bitmaps of disk0 by name: how many bytes each marks, and whether it records. */
  async function bitmaps(): Promise<Record<string, { count: number; recording: boolean }>> {
    const nodes = await client.execute<BlockNode[]>('query-named-block-nodes');
    const disk = nodes.find((node) => node['node-name'] === 'disk0');
    const list = disk?.['dirty-bitmaps'] ?? [];
    return Object.fromEntries(
      list.map((b) => [b.name, { count: b.count, recording: b.recording }]),
    );
  }

  it('reads the version the daemon reports from the greeting', () => {
    const reported = execFileSync('qemu-storage-daemon', ['--version']).toString();
    const [, major, minor, micro] = /version (\d+)\.(\d+)\.(\d+)/.exec(reported) ?? [];
    expect(client.version).toEqual({
      major: Number(major),
      minor: Number(minor),
      micro: Number(micro),
    });
  });

  it('lists the disk format node and its file node', async () => {
    const nodes = await client.execute<BlockNode[]>('query-named-block-nodes');
    const drivers = Object.fromEntries(nodes.map((node) => [node['node-name'], node.drv]));
    expect(drivers).toEqual({ [daemon!.nodeName]: 'raw', file0: 'file' });
  });

  it('adds bitmaps, alone and in a transaction, and the enabled one counts writes', async () => {
    await client.execute('block-dirty-bitmap-add', { node: 'disk0', name: 'a' });
    expect(await bitmaps()).toEqual({ a: { count: 0, recording: true } });
    const actions = [
      { type: 'block-dirty-bitmap-add', data: { node: 'disk0', name: 'b' } },
      { type: 'block-dirty-bitmap-disable', data: { node: 'disk0', name: 'a' } },
    ];
    expect(await client.execute('transaction', { actions })).toEqual({});
    await daemon!.write(MiB, 64 * KiB, 0xab);
    expect(await bitmaps()).toEqual({
      a: { count: 0, recording: false },
      b: { count: 64 * KiB, recording: true },
    });
    const bytes = readFileSync(image).subarray(MiB - 1, MiB + 64 * KiB + 1);
    expect([bytes[0], bytes.at(-1)]).toEqual([0, 0]);
    expect(bytes.subarray(1, -1).every((byte) => byte === 0xab)).toBe(true);
    // The kit stops its NBD server again, so other code can start its own, and write again.
    await expect(client.execute('nbd-server-stop')).rejects.toThrow('NBD server not running');
    await daemon!.write(3 * MiB + 1, 1, 0xcd);
    expect((await bitmaps())['b']?.count).toBe(128 * KiB);
    expect(readFileSync(image)[3 * MiB + 1]).toBe(0xcd);
  });

  it('rejects an unknown command with QmpError CommandNotFound and goes on', async () => {
    const error: unknown = await client.execute('holdfast-no-such-command').catch((e) => e);
    expect(error).toBeInstanceOf(QmpError);
    expect(error).toMatchObject({
      errorClass: 'CommandNotFound',
      command: 'holdfast-no-such-command',
    });
    expect((error as QmpError).description).toContain('holdfast-no-such-command');
    expect(await client.execute('query-block-exports')).toEqual([]);
  });

  it('gives commands sent at once their own answers', async () => {
    const answers = await Promise.allSettled([
      client.execute('query-version'),
      client.execute('query-block-exports'),
      client.execute('block-dirty-bitmap-remove', { node: 'disk0', name: 'missing' }),
      client.execute<BlockNode[]>('query-named-block-nodes'),
    ]);
    expect(answers[0]).toMatchObject({ status: 'fulfilled', value: { qemu: client.version } });
    expect(answers[1]).toEqual({ status: 'fulfilled', value: [] });
    expect(answers[2]).toMatchObject({
      status: 'rejected',
      reason: { errorClass: 'GenericError' },
    });
    expect(answers[3]).toMatchObject({
      status: 'fulfilled',
      value: [{ 'node-name': 'disk0' }, {}],
    });
  });
});

const GREETING = { QMP: { version: { qemu: { micro: 3, minor: 2, major: 8 } }, capabilities: [] } };

/** A fake QEMU on a UNIX socket: greets when `greet`, then hands each command to `onCommand`. */
async function fakeQemu(
  name: string,
  greet: boolean,
  onCommand: (socket: Socket, command: { execute: string; id?: number }) => void,
): Promise<{ path: string; close(): void }> {
  const path = join(dir, name);
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    if (greet) socket.write(`${JSON.stringify(GREETING)}\n`);
    let partial = '';
    socket.on('data', (chunk) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines)
        onCommand(socket, JSON.parse(line) as { execute: string; id?: number });
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, close: () => (sockets.forEach((s) => s.destroy()), server.close()) };
}

function answer(id: number | undefined, value: unknown): string {
  return `${JSON.stringify({ return: value, id })}\n`;
}

describe('QmpClient against a fake QEMU', () => {
  it('matches answers to commands by id, across split and merged chunks, past events', async () => {
    const held: Array<{ execute: string; id?: number }> = [];
    const qemu = await fakeQemu('order.sock', true, (socket, command) => {
      if (command.execute === 'qmp_capabilities') return void socket.write(answer(command.id, {}));
      held.push(command);
      if (held.length < 3) return;
      // Answers in reverse order, an event among them, cut mid-line into two writes.
      const event = `${JSON.stringify({ event: 'BLOCK_EXPORT_DELETED', data: { id: 'x' } })}\n`;
      const text = held
        .reverse()
        .map((c) => answer(c.id, c.execute))
        .join(event);
      socket.write(text.slice(0, 30));
      setTimeout(() => socket.write(text.slice(30)), 20);
    });
    const client = await QmpClient.connect(qemu.path);
    expect(client.version).toEqual({ major: 8, minor: 2, micro: 3 });
    const answers = await Promise.all(['one', 'two', 'three'].map((c) => client.execute(c)));
    expect(answers).toEqual(['one', 'two', 'three']);
    expect(client.events).toMatchObject([
      { event: 'BLOCK_EXPORT_DELETED' },
      { event: 'BLOCK_EXPORT_DELETED' },
    ]);
    await client.close();
    await client.close();
    qemu.close();
  });

  it('rejects a socket that does not exist, naming it', async () => {
    const path = join(dir, 'absent.sock');
    const error: unknown = await QmpClient.connect(path).catch((e) => e);
    expect(isHoldfastError(error, 'SOURCE_UNREADABLE')).toBe(true);
    expect((error as Error).message).toContain(`${path}: it does not exist`);
  });

  it('rejects a server that never greets within timeoutMs, and on abort', async () => {
    const qemu = await fakeQemu('mute.sock', false, () => {});
    const error: unknown = await QmpClient.connect(qemu.path, { timeoutMs: 100 }).catch((e) => e);
    expect(isHoldfastError(error, 'SOURCE_UNREADABLE')).toBe(true);
    expect((error as Error).message).toContain('no QMP handshake within 100 ms');
    const signal = AbortSignal.timeout(50);
    const aborted: unknown = await QmpClient.connect(qemu.path, { signal }).catch((e) => e);
    expect(isHoldfastError(aborted, 'CANCELLED')).toBe(true);
    qemu.close();
  }, 5_000);

  it('rejects a pending command when the connection drops, and one never answered', async () => {
    const qemu = await fakeQemu('drop.sock', true, (socket, command) => {
      if (command.execute === 'qmp_capabilities') socket.write(answer(command.id, {}));
      else if (command.execute === 'query-status') socket.destroy();
    });
    const client = await QmpClient.connect(qemu.path);
    const ignored = client.execute('query-version', undefined, { timeoutMs: 5_000 });
    const silent = await client.execute('stop', {}, { timeoutMs: 50 }).catch((e) => e);
    expect(isHoldfastError(silent, 'SOURCE_UNREADABLE')).toBe(true);
    expect((silent as Error).message).toContain('did not answer stop within 50 ms');
    await expect(client.execute('query-status')).rejects.toThrow(
      'closed before QEMU answered query-status',
    );
    await expect(ignored).rejects.toThrow('closed before QEMU answered query-version');
    await expect(client.execute('cont')).rejects.toMatchObject({ code: 'SOURCE_UNREADABLE' });
    qemu.close();
  }, 5_000);
});
