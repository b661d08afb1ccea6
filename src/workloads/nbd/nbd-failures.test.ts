import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isHoldfastError } from '../../core/index.js';
import { randomBytesSeeded, seededRandom } from '../../engine/engine.testkit.js';
import { memoryDisk } from '../disk-images.testkit.js';
import type { DiskReader } from '../partition-table.js';
import { TestNbdClient } from './nbd-client.testkit.js';
import { startNbdExport } from './nbd-export.js';
import { CMD, ERRNO } from './protocol.js';

const MiB = 1024 * 1024;
const image = randomBytesSeeded(4 * MiB, 3);
const request = TestNbdClient.request;

/** A disk whose reads wait until the test opens the gate. */
function gatedDisk(): { disk: DiskReader; open(): void; started: Promise<void> } {
  let open!: () => void;
  let started!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const startedPromise = new Promise<void>((resolve) => (started = resolve));
  const inner = memoryDisk(image);
  const disk: DiskReader = {
    size: inner.size,
    read: async (offset, length) => {
      started();
      await gate;
      return inner.read(offset, length);
    },
  };
  return { disk, open, started: startedPromise };
}

describe('failures', () => {
  it('answers EIO for a read the disk fails, reports it, and reads on', async () => {
    const errors: Array<[unknown, unknown]> = [];
    const inner = memoryDisk(image);
    const damaged: DiskReader = {
      size: inner.size,
      read: async (offset, length) => {
        if (offset < 2 * MiB && offset + length > MiB) throw new Error('pack 4f2e is damaged');
        return inner.read(offset, length);
      },
    };
    const server = await startNbdExport({
      disks: { name: 'vm', disk: damaged },
      onError: (error, read) => errors.push([error, read]),
    });
    const client = await TestNbdClient.connect(server.port);
    await client.open('vm');
    client.send(request(CMD.READ, 1n, MiB + 4096, 4096));
    expect(await client.simpleReply()).toEqual({ handle: 1n, error: ERRNO.EIO });
    client.send(request(CMD.READ, 2n, 0, 4096));
    const good = await client.simpleReply(new Map([[2n, 4096]]));
    expect(good.data?.equals(image.subarray(0, 4096))).toBe(true);
    expect(errors).toEqual([
      [new Error('pack 4f2e is damaged'), { exportName: 'vm', offset: MiB + 4096, length: 4096 }],
    ]);
    client.destroy();
    await server.close();
  });

  it('answers reads in the order they finish, each with its own handle', async () => {
    const random = seededRandom(5);
    const inner = memoryDisk(image);
    const jittery: DiskReader = {
      size: inner.size,
      read: async (offset, length) => {
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 20)));
        return inner.read(offset, length);
      },
    };
    const server = await startNbdExport({ disks: { name: 'vm', disk: jittery } });
    const client = await TestNbdClient.connect(server.port);
    await client.open('vm');
    const lengths = new Map<bigint, number>();
    for (let handle = 0n; handle < 50n; handle++) {
      lengths.set(handle, 4096);
      client.send(request(CMD.READ, handle, Number(handle) * 4096, 4096));
    }
    const order: bigint[] = [];
    for (let i = 0; i < 50; i++) {
      const reply = await client.simpleReply(lengths);
      const at = Number(reply.handle) * 4096;
      expect(reply.data?.equals(image.subarray(at, at + 4096))).toBe(true);
      order.push(reply.handle);
    }
    expect(new Set(order).size).toBe(50);
    expect(order).not.toEqual([...lengths.keys()]);
    client.destroy();
    await server.close();
  });

  it('survives a client leaving mid-read, and close waits for the read still running', async () => {
    const gated = gatedDisk();
    const errors: unknown[] = [];
    const server = await startNbdExport({
      disks: new Map([
        ['slow', gated.disk],
        ['fast', memoryDisk(image)],
      ]),
      onError: (error) => errors.push(error),
    });
    const leaving = await TestNbdClient.connect(server.port);
    await leaving.open('slow');
    leaving.send(request(CMD.READ, 1n, 0, MiB));
    await gated.started;
    leaving.destroy();
    const next = await TestNbdClient.connect(server.port);
    await next.open('fast');
    next.send(request(CMD.READ, 2n, 5, 10));
    expect((await next.simpleReply(new Map([[2n, 10]]))).data).toEqual(image.subarray(5, 15));
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    expect(await next.closedWithin(5_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed).toBe(false);
    gated.open();
    await closing;
    expect(errors).toEqual([]);
  });

  it('holds back a client that pipelines large reads and never takes the answers', async () => {
    let bytesRead = 0;
    const inner = memoryDisk(image);
    const counting: DiskReader = {
      size: inner.size,
      read: (offset, length) => ((bytesRead += length), inner.read(offset, length)),
    };
    const server = await startNbdExport({ disks: { name: 'vm', disk: counting } });
    const greedy = await TestNbdClient.connect(server.port);
    await greedy.open('vm');
    greedy.socket.pause();
    for (let handle = 0n; handle < 400n; handle++)
      greedy.send(request(CMD.READ, handle, Number(handle % 3n) * MiB, MiB));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // 400 MiB asked; 64 MiB of answers held for the client plus what the kernel's buffers take.
    expect(bytesRead).toBeGreaterThan(0);
    expect(bytesRead).toBeLessThan(160 * MiB);
    const other = await TestNbdClient.connect(server.port);
    await other.open('vm');
    other.send(request(CMD.READ, 1n, 0, 100));
    expect((await other.simpleReply(new Map([[1n, 100]]))).data).toEqual(image.subarray(0, 100));
    await server.close();
  });
});

describe('startNbdExport', () => {
  it('listens on 127.0.0.1 by default and refuses wildcard addresses', async () => {
    const server = await startNbdExport({ disks: { name: 'disk 1', disk: memoryDisk(image) } });
    expect(server.host).toBe('127.0.0.1');
    expect(server.url('disk 1')).toBe(`nbd://127.0.0.1:${server.port}/disk%201`);
    await server.close();
    for (const host of ['0.0.0.0', '::'])
      await expect(
        startNbdExport({ host, disks: { name: 'd', disk: memoryDisk(image) } }),
      ).rejects.toSatisfy(
        (e) => isHoldfastError(e, 'USAGE_INVALID') && /every network/.test(e.message),
      );
    await expect(startNbdExport({ disks: new Map() })).rejects.toThrow(/no disk to export/);
  });

  it('closes when its signal is aborted, ending live connections', async () => {
    const controller = new AbortController();
    const server = await startNbdExport({
      disks: { name: 'd', disk: memoryDisk(image) },
      signal: controller.signal,
    });
    const client = await TestNbdClient.connect(server.port);
    await client.open('d');
    controller.abort();
    expect(await client.closedWithin(5_000)).toBe(true);
    await server.close();
    const refused = await new Promise<string>((resolve) => {
      const socket = connect({ port: server.port, host: '127.0.0.1' }, () => resolve('accepted'));
      socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
