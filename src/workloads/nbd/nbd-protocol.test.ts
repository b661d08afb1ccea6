import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytesSeeded, seededRandom } from '../../engine/engine.testkit.js';
import { memoryDisk } from '../disk-images.testkit.js';
import { TestNbdClient, goData } from './nbd-client.testkit.js';
import { startNbdExport, type NbdExport } from './nbd-export.js';
import { CMD, ERRNO, EXPORT_FLAGS, INFO, OPT, REP } from './protocol.js';

const MiB = 1024 * 1024;
const image = randomBytesSeeded(4 * MiB, 7);
const request = TestNbdClient.request;
let server: NbdExport;
let errors: unknown[];

beforeEach(async () => {
  errors = [];
  server = await startNbdExport({
    disks: new Map([
      ['disk0', memoryDisk(image)],
      ['small', memoryDisk(Buffer.alloc(4096, 1))],
    ]),
    onError: (error) => errors.push(error),
  });
});
afterEach(() => server.close());

/** A fresh client reads a stretch of disk0 correctly: what every hostile test ends with. */
async function expectStillServing(): Promise<void> {
  const client = await TestNbdClient.connect(server.port);
  await client.open('disk0');
  client.send(request(CMD.READ, 1n, 3 * MiB, 4096));
  const reply = await client.simpleReply(new Map([[1n, 4096]]));
  expect(reply.data).toEqual(image.subarray(3 * MiB, 3 * MiB + 4096));
  client.destroy();
}

async function transmitting(name = 'disk0', structured = false): Promise<TestNbdClient> {
  const client = await TestNbdClient.connect(server.port);
  await client.open(name, structured);
  return client;
}

describe('negotiation', () => {
  it('greets fixed-newstyle and answers GO with size, read-only flags and block sizes', async () => {
    const client = await TestNbdClient.connect(server.port);
    expect(await client.greet()).toEqual({ magic: 'NBDMAGIC', handshakeFlags: 3 });
    client.sendOption(OPT.GO, goData('disk0', [INFO.NAME, INFO.BLOCK_SIZE]));
    const replies = [await client.optionReply(), await client.optionReply()];
    replies.push(await client.optionReply(), await client.optionReply());
    expect(replies.map((r) => r.type)).toEqual([REP.INFO, REP.INFO, REP.INFO, REP.ACK]);
    expect(replies[0]!.data.readBigUInt64BE(2)).toBe(BigInt(image.length));
    expect(replies[0]!.data.readUInt16BE(10)).toBe(EXPORT_FLAGS);
    expect(replies[1]!.data.subarray(2).toString()).toBe('disk0');
    expect([4, 8, 12].map((at) => replies[2]!.data.readUInt32BE(at - 2))).toEqual([
      1,
      4096,
      32 * MiB,
    ]);
    client.destroy();
  });

  it('lists the exports, refuses unknown names and options, and stays in haggling', async () => {
    const client = await TestNbdClient.connect(server.port);
    await client.greet();
    client.sendOption(OPT.LIST);
    const listed = [await client.optionReply(), await client.optionReply()];
    expect(listed.map((r) => r.data.subarray(4).toString())).toEqual(['disk0', 'small']);
    expect((await client.optionReply()).type).toBe(REP.ACK);
    client.sendOption(OPT.LIST, Buffer.from('x'));
    expect((await client.optionReply()).type).toBe(REP.ERR_INVALID);
    client.sendOption(OPT.INFO, goData('nope'));
    expect((await client.optionReply()).type).toBe(REP.ERR_UNKNOWN);
    client.sendOption(OPT.GO, Buffer.from([0, 0, 0, 9, 1]));
    expect((await client.optionReply()).type).toBe(REP.ERR_INVALID);
    client.sendOption(99, Buffer.from('whatever'));
    expect(await client.optionReply()).toMatchObject({ option: 99, type: REP.ERR_UNSUP });
    // An oversized option is discarded unread, and the stream stays in step.
    client.sendOption(OPT.INFO, Buffer.alloc(3 * MiB));
    expect((await client.optionReply()).type).toBe(REP.ERR_TOO_BIG);
    client.sendOption(OPT.GO, goData('small'));
    const info = await client.optionReply();
    expect(info.data.readBigUInt64BE(2)).toBe(4096n);
    client.destroy();
  });

  it('answers the old EXPORT_NAME with size, flags and zeroes unless NO_ZEROES', async () => {
    for (const [flags, length] of [
      [1, 134],
      [3, 10],
    ] as const) {
      const client = await TestNbdClient.connect(server.port);
      await client.greet(flags);
      client.sendOption(OPT.EXPORT_NAME, Buffer.from('small'));
      const reply = await client.read(length);
      expect(reply.readBigUInt64BE(0)).toBe(4096n);
      expect(reply.readUInt16BE(8)).toBe(EXPORT_FLAGS);
      client.send(request(CMD.READ, 5n, 0, 16));
      expect((await client.simpleReply(new Map([[5n, 16]]))).data).toEqual(Buffer.alloc(16, 1));
      client.destroy();
    }
  });

  it('closes on a wrong option magic, unknown client flags, an unknown EXPORT_NAME, ABORT', async () => {
    const cases: Array<(client: TestNbdClient) => Promise<void>> = [
      async (c) => (await c.greet(), c.sendOption(OPT.LIST, Buffer.alloc(0), 0x1234n)),
      async (c) => void (await c.greet(0x80)),
      async (c) => (await c.greet(), c.sendOption(OPT.EXPORT_NAME, Buffer.from('nope'))),
      async (c) => {
        await c.greet();
        c.sendOption(OPT.ABORT);
        expect((await c.optionReply()).type).toBe(REP.ACK);
      },
    ];
    for (const hostile of cases) {
      const client = await TestNbdClient.connect(server.port);
      await hostile(client);
      expect(await client.closedWithin(5_000)).toBe(true);
    }
    await expectStillServing();
  });
});

describe('transmission', () => {
  it('refuses reads outside the disk, zero and huge lengths, and goes on serving', async () => {
    const client = await transmitting();
    const end = image.length;
    const bad: Array<[bigint | number, number]> = [
      [end - 100, 200],
      [end, 1],
      [0, 0],
      [0, 0xffffffff],
      [0, 32 * MiB + 1],
      [2n ** 63n, 512],
      [2n ** 64n - 1n, 1],
    ];
    bad.forEach(([offset, length], i) => client.send(request(CMD.READ, BigInt(i), offset, length)));
    for (let i = 0; i < bad.length; i++)
      expect(await client.simpleReply()).toEqual({ handle: BigInt(i), error: ERRNO.EINVAL });
    client.send(request(CMD.READ, 99n, end - 100, 100));
    expect((await client.simpleReply(new Map([[99n, 100]]))).data).toEqual(image.subarray(-100));
    client.destroy();
  });

  it('refuses writes with EPERM, consuming the payload so the stream stays in step', async () => {
    const client = await transmitting();
    const payload = Buffer.alloc(3 * MiB, 0xee);
    client.send(Buffer.concat([request(CMD.WRITE, 1n, 0, payload.length), payload]));
    client.send(request(CMD.TRIM, 2n, 0, 4096));
    client.send(request(CMD.WRITE_ZEROES, 3n, 0, 4096));
    client.send(request(CMD.FLUSH, 4n, 0, 0));
    client.send(request(42, 5n, 0, 0));
    client.send(request(CMD.READ, 6n, 0, 4096));
    const replies = [];
    for (let i = 0; i < 6; i++) replies.push(await client.simpleReply(new Map([[6n, 4096]])));
    expect(replies.map((r) => [r.handle, r.error])).toEqual([
      [1n, ERRNO.EPERM],
      [2n, ERRNO.EPERM],
      [3n, ERRNO.EPERM],
      [4n, ERRNO.OK],
      [5n, ERRNO.EINVAL],
      [6n, ERRNO.OK],
    ]);
    expect(replies[5]!.data).toEqual(image.subarray(0, 4096));
    client.send(request(CMD.DISC, 7n, 0, 0));
    expect(await client.closedWithin(5_000)).toBe(true);
  });

  it('answers many pipelined reads, sent whole or a few bytes at a time, each by its handle', async () => {
    const random = seededRandom(11);
    const reads = new Map<bigint, { offset: number; length: number }>();
    for (let handle = 1n; handle <= 300n; handle++) {
      const length = 1 + Math.floor(random() * 128 * 1024);
      reads.set(handle, { offset: Math.floor(random() * (image.length - length)), length });
    }
    const bytes = Buffer.concat(
      [...reads].map(([handle, r]) => request(CMD.READ, handle, r.offset, r.length)),
    );
    const lengths = new Map([...reads].map(([handle, r]) => [handle, r.length]));
    for (const split of [false, true]) {
      const client = await transmitting();
      if (!split) client.send(bytes);
      else
        void (async () => {
          for (let at = 0; at < bytes.length; at += 7) {
            client.send(bytes.subarray(at, at + 7));
            if (at % 700 === 0) await new Promise((resolve) => setImmediate(resolve));
          }
        })();
      const answered = new Set<bigint>();
      for (let i = 0; i < reads.size; i++) {
        const reply = await client.simpleReply(lengths);
        const read = reads.get(reply.handle)!;
        // Buffer.equals: a deep toEqual of megabytes is slow.
        expect(reply.data?.equals(image.subarray(read.offset, read.offset + read.length))).toBe(
          true,
        );
        answered.add(reply.handle);
      }
      expect(answered.size).toBe(reads.size);
      client.destroy();
    }
  });

  it('closes the connection on a wrong request magic', async () => {
    const client = await transmitting();
    const bad = request(CMD.READ, 1n, 0, 512);
    bad.writeUInt32BE(0xdeadbeef, 0);
    client.send(bad);
    expect(await client.closedWithin(5_000)).toBe(true);
    await expectStillServing();
  });

  it('sends structured replies when asked: data with its offset, errors with a message', async () => {
    const client = await transmitting('disk0', true);
    client.send(request(CMD.READ, 1n, 1000, 3000));
    client.send(request(CMD.READ, 2n, image.length, 1));
    client.send(request(CMD.WRITE_ZEROES, 3n, 0, 1));
    client.send(request(CMD.FLUSH, 4n, 0, 0));
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await client.structuredReply());
    expect(replies[0]).toMatchObject({ handle: 1n, type: 1, flags: 1 });
    expect(replies[0]!.data).toEqual(image.subarray(1000, 4000));
    expect(replies[1]).toMatchObject({ handle: 2n, error: ERRNO.EINVAL, flags: 1 });
    expect(replies[1]!.message).toMatch(/past the export/);
    expect(replies[2]).toMatchObject({
      handle: 3n,
      error: ERRNO.EPERM,
      message: expect.stringMatching(/read-only/),
    });
    expect(replies[3]).toMatchObject({ handle: 4n, error: 0, type: 0, flags: 1 });
    client.destroy();
  });
});
