import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHoldfastError } from '../../core/index.js';
import { ensureCommand } from '../../core/os-tools.testkit.js';
import type { ByteRange } from '../byte-ranges.js';
import { ensureQemu, qemu, qemuWrite, scratchDirectory } from '../qcow2/qemu.testkit.js';
import { flaggedExtents, type MetaContextQuery } from './block-status.js';
import {
  CMD,
  CMD_BLOCK_STATUS,
  exportInfo,
  greeting,
  OPT,
  OPT_SET_META_CONTEXT,
  optionReply,
  parseRequest,
  REP,
  REP_META_CONTEXT,
  REPLY_FLAG_DONE,
  REPLY_TYPE,
  STRUCTURED_REPLY_MAGIC,
  type NbdRequest,
} from './protocol.js';
import { SocketReader } from './socket-reader.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const scratch = scratchDirectory();
afterAll(() => scratch.remove());

/** The promise's rejection, failing the test when it resolves instead. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected a failure, got ${JSON.stringify(outcome)}`);
  return outcome.error as Error;
}

/** Serves `image` read-only as export `disk` with qemu-nbd, once its socket is there. */
async function qemuNbd(image: string, bitmaps: string[]): Promise<ChildProcess> {
  const socket = `${image}.sock`;
  const args = ['--socket', socket, '--read-only', '--format=qcow2', '--persistent', '-x', 'disk'];
  const server = spawn('qemu-nbd', [...args, ...bitmaps.flatMap((b) => ['-B', b]), image]);
  servers.push(server);
  let stderr = '';
  server.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  for (let waited = 0; !existsSync(socket); waited += 50) {
    if (server.exitCode !== null || waited > 10_000)
      throw new Error(`qemu-nbd did not start serving ${socket}: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return server;
}
const servers: ChildProcess[] = [];
afterAll(() => servers.forEach((server) => server.kill()));

describe('flaggedExtents against qemu-nbd', () => {
  const image = join(scratch.path, 'disk.qcow2');
  const socketPath = `${image}.sock`;
  const ask = (context: string, exportName = 'disk', flags?: number) =>
    flaggedExtents({ socketPath, exportName, context, ...(flags ? { flags } : {}) });

  beforeAll(async () => {
    ensureQemu();
    ensureCommand('qemu-nbd', 'qemu-utils');
    ensureCommand('nbdinfo', 'libnbd-bin');
    qemu('qemu-img', ['create', '-q', '-f', 'qcow2', image, '64M']);
    qemu('qemu-img', ['bitmap', '--add', '-g', '65536', image, 'b0']);
    // qemu-io marks enabled bitmaps dirty and stores them when it closes the image.
    qemuWrite(image, [
      { offset: MiB, length: 64 * KiB, pattern: 0xab },
      { offset: 10 * MiB, length: 4 * KiB, pattern: 1 },
    ]);
    qemu('qemu-img', ['bitmap', '--add', image, 'clean']);
    await qemuNbd(image, ['b0', 'clean']);
  });

  it('returns the dirty ranges of a bitmap at its 64 KiB granularity, and the size', async () => {
    expect(await ask('qemu:dirty-bitmap:b0')).toEqual({
      size: 64 * MiB,
      ranges: [
        { offset: MiB, length: 64 * KiB },
        { offset: 10 * MiB, length: 64 * KiB },
      ],
    });
  });

  it('walks an 8 GiB export in several requests, up to its last cluster', async () => {
    const big = join(scratch.path, 'big.qcow2');
    qemu('qemu-img', ['create', '-q', '-f', 'qcow2', big, '8G']);
    qemu('qemu-img', ['bitmap', '--add', '-g', '65536', big, 'b0']);
    qemuWrite(big, [
      { offset: 5 * 1024 * MiB, length: 4 * KiB, pattern: 1 },
      { offset: 8 * 1024 * MiB - 64 * KiB, length: 64 * KiB, pattern: 2 },
    ]);
    await qemuNbd(big, ['b0']);
    const query = {
      socketPath: `${big}.sock`,
      exportName: 'disk',
      context: 'qemu:dirty-bitmap:b0',
    };
    expect(await flaggedExtents(query)).toEqual({
      size: 8 * 1024 * MiB,
      ranges: [
        { offset: 5 * 1024 * MiB, length: 64 * KiB },
        { offset: 8 * 1024 * MiB - 64 * KiB, length: 64 * KiB },
      ],
    });
  });

  it('agrees with nbdinfo --map for the bitmap and for base:allocation (holes, zeros)', async () => {
    for (const [context, flags] of [
      ['qemu:dirty-bitmap:b0', 1],
      ['base:allocation', 1],
      ['base:allocation', 2],
    ] as const) {
      const uri = `nbd+unix:///disk?socket=${socketPath}`;
      const map = JSON.parse(
        execFileSync('nbdinfo', [`--map=${context}`, '--json', uri]).toString(),
      ) as Array<{ offset: number; length: number; type: number }>;
      const expected: ByteRange[] = [];
      for (const { offset, length } of map.filter((extent) => (extent.type & flags) !== 0)) {
        const last = expected.at(-1);
        if (last && last.offset + last.length === offset)
          expected[expected.length - 1] = { offset: last.offset, length: last.length + length };
        else expected.push({ offset, length });
      }
      expect(expected.length, context).toBeGreaterThan(0);
      expect((await ask(context, 'disk', flags)).ranges, `${context} ${flags}`).toEqual(expected);
    }
  });

  it('returns no ranges for a bitmap with nothing dirty', async () => {
    expect(await ask('qemu:dirty-bitmap:clean')).toEqual({ size: 64 * MiB, ranges: [] });
  });

  it('fails naming a context the server does not offer', async () => {
    const error = await rejection(ask('qemu:dirty-bitmap:missing'));
    expect(isHoldfastError(error, 'SOURCE_UNREADABLE')).toBe(true);
    expect(error.message).toContain('qemu:dirty-bitmap:missing');
    expect(error.message).toContain('qemu-nbd -B');
  });

  it('fails naming an export the server does not have', async () => {
    const error = await rejection(ask('qemu:dirty-bitmap:b0', 'other'));
    expect(isHoldfastError(error, 'SOURCE_UNREADABLE')).toBe(true);
    expect(error.message).toContain("export named 'other'");
  });

  it('fails saying what to check when nothing listens on the socket', async () => {
    const query = { socketPath: join(scratch.path, 'none.sock'), exportName: '', context: 'x' };
    const error = await rejection(flaggedExtents(query));
    expect(isHoldfastError(error, 'SOURCE_UNREADABLE')).toBe(true);
    expect(error.message).toMatch(/none\.sock could not be reached.*ENOENT.*server is running/);
  });
});

/** The chunks a scripted server answers a request with, after an honest handshake. */
type Script = (request: NbdRequest) => Buffer[];

const SIZE = MiB;
const CONTEXT = 'qemu:dirty-bitmap:b0';
const CONTEXT_ID = 7;

/** A scripted NBD server on a UNIX socket: it negotiates properly, then follows `script`. */
async function scriptedServer(
  name: string,
  script: Script,
): Promise<{ path: string; server: Server }> {
  const path = join(scratch.path, name);
  const server = createServer((socket) => {
    socket.on('error', () => {});
    const reader = new SocketReader(socket);
    const serve = async () => {
      socket.write(greeting());
      await reader.read(4);
      for (let going = true; going;) {
        const header = await reader.read(16);
        const option = header.readUInt32BE(8);
        await reader.read(header.readUInt32BE(12));
        const context = Buffer.concat([Buffer.from([0, 0, 0, CONTEXT_ID]), Buffer.from(CONTEXT)]);
        if (option === OPT_SET_META_CONTEXT)
          socket.write(optionReply(option, REP_META_CONTEXT, context));
        if (option === OPT.GO) socket.write(optionReply(option, REP.INFO, exportInfo(SIZE)));
        socket.write(optionReply(option, REP.ACK));
        going = option !== OPT.GO;
      }
      for (;;) socket.write(Buffer.concat(script(parseRequest(await reader.read(28))!)));
    };
    serve().catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, server };
}

/** One structured reply chunk answering `request`. */
function chunk(request: NbdRequest, type: number, flags: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(20);
  header.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  header.writeUInt16BE(flags, 4);
  header.writeUInt16BE(type, 6);
  request.handle.copy(header, 8);
  header.writeUInt32BE(payload.length, 16);
  return Buffer.concat([header, payload]);
}

/** A BLOCK_STATUS chunk: the context id, then (length, flags) pairs. */
function status(request: NbdRequest, pairs: number[][], flags = REPLY_FLAG_DONE, id = CONTEXT_ID) {
  const payload = Buffer.alloc(4 + 8 * pairs.length);
  payload.writeUInt32BE(id, 0);
  pairs.forEach(([length = 0, bits = 0], i) => {
    payload.writeUInt32BE(length, 4 + 8 * i);
    payload.writeUInt32BE(bits, 8 + 8 * i);
  });
  return chunk(request, REPLY_TYPE.BLOCK_STATUS, flags, payload);
}

/** An ERROR chunk with `errno` and `message`. */
function errorChunk(request: NbdRequest, errno: number, message: string): Buffer {
  const text = Buffer.from(message);
  const payload = Buffer.alloc(6 + text.length);
  payload.writeUInt32BE(errno, 0);
  payload.writeUInt16BE(text.length, 4);
  text.copy(payload, 6);
  return chunk(request, REPLY_TYPE.ERROR, REPLY_FLAG_DONE, payload);
}

describe('flaggedExtents against a scripted server', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((server) => server.close()));
  async function run(name: string, script: Script, query: Partial<MetaContextQuery> = {}) {
    const { path, server } = await scriptedServer(name, script);
    servers.push(server);
    const base = { socketPath: path, exportName: 'disk', context: CONTEXT, timeoutMs: 300 };
    return flaggedExtents({ ...base, ...query });
  }

  it('continues where short answers end, merges across them, and disconnects', async () => {
    const seen: number[] = [];
    let disconnected!: () => void;
    const disconnect = new Promise<void>((resolve) => (disconnected = resolve));
    // 64 KiB per answer, after another context's chunk: flagged from 128 KiB to 320 KiB.
    const result = await run('short.sock', (request) => {
      seen.push(request.type);
      if (request.type === CMD.DISC) disconnected();
      if (request.type !== CMD_BLOCK_STATUS) return [];
      const flag = request.offset >= 128 * KiB && request.offset < 320 * KiB ? 1 : 0;
      const other = status(request, [[SIZE, 1]], 0, 99);
      return [other, status(request, [[64 * KiB, flag | 2]])];
    });
    expect(result).toEqual({ size: SIZE, ranges: [{ offset: 128 * KiB, length: 192 * KiB }] });
    await disconnect;
    expect(seen).toEqual([...Array<number>(16).fill(CMD_BLOCK_STATUS), CMD.DISC]);
  });

  const hostile: Array<[string, Script, RegExp]> = [
    ['zero-length extents', (r) => [status(r, [[0, 1]])], /described no bytes at offset 0/],
    [
      'extents past the end',
      (r) => [
        status(r, [
          [SIZE, 0],
          [4096, 1],
        ]),
      ],
      /described bytes up to 1052672, past the export's end at 1048576/,
    ],
    [
      'chunks without end',
      (r) => Array.from({ length: 100 }, () => status(r, [[4096, 1]], 0, 99)),
      /more than 16 chunks in one reply/,
    ],
    [
      'an error chunk',
      (r) => [errorChunk(r, 5, 'bitmap b0 is gone')],
      /error 5: bitmap b0 is gone/,
    ],
    ['no answer', () => [], /sent nothing for 300 ms while answering block status at offset 0/],
  ];
  for (const [name, script, message] of hostile) {
    it(`rejects a server that sends ${name}, with a HoldfastError`, async () => {
      const error = await rejection(run(`${name.replace(/\W/g, '-')}.sock`, script));
      expect(isHoldfastError(error, 'SOURCE_UNREADABLE')).toBe(true);
      expect(error.message).toMatch(message);
    }, 10_000);
  }

  it('stops with CANCELLED when the signal aborts', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const query = { signal: controller.signal, timeoutMs: 60_000 };
    const error = await rejection(run('abort.sock', () => [], query));
    expect(isHoldfastError(error, 'CANCELLED')).toBe(true);
  }, 10_000);
});
