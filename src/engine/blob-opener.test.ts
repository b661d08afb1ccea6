import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sealBlob } from './blob-codec.js';
import {
  InlineBlobOpener,
  WorkerBlobOpener,
  type BlobOpener,
  type SpanBlobWrites,
  type WrittenBlob,
} from './blob-opener.js';
import { randomBytesSeeded } from './engine.testkit.js';

// The threads run the compiled worker script: `npm test` builds it first (`tsc -b`).
const SCRIPT = new URL('../../dist/engine/blob-open-worker.js', import.meta.url);
const KEY = randomBytesSeeded(32, 7);

/** Two blobs sealed one after the other, as in a pack, and where each sits in the span. */
function span(): { bytes: Buffer; plain: Buffer[]; blobs: Array<Omit<SpanBlobWrites, 'writes'>> } {
  const plain = [Buffer.alloc(200_000, 'compressible text '), randomBytesSeeded(70_000, 8)];
  const ids = ['aa'.repeat(32), 'bb'.repeat(32)];
  const sealed = plain.map((p, i) => sealBlob(KEY, 'data', ids[i]!, p, { level: 3 }));
  let offset = 0;
  const blobs = sealed.map((s, i) => {
    const blob = { id: ids[i]!, type: 'data' as const, offset, length: s.byteLength };
    offset += s.byteLength;
    return { ...blob, rawLength: plain[i]!.byteLength };
  });
  return { bytes: Buffer.concat(sealed), plain, blobs };
}

const openers: Array<[string, () => BlobOpener]> = [
  ['on the calling thread', () => new InlineBlobOpener(KEY)],
  [
    'on worker threads',
    () => {
      if (!existsSync(fileURLToPath(SCRIPT)))
        throw new Error(`${fileURLToPath(SCRIPT)} is missing: run \`npm run build\` first.`);
      return new WorkerBlobOpener(KEY, 2, SCRIPT);
    },
  ],
];

describe.each(openers)('writing opened blobs %s', (_, create) => {
  let dir: string;
  let opener: BlobOpener;
  const fds: number[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'holdfast-opener-'));
    opener = create();
  });
  afterEach(async () => {
    for (const fd of fds.splice(0)) closeSync(fd);
    await opener.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function file(name: string): { fd: number; path: string } {
    const path = join(dir, name);
    const fd = openSync(path, 'w+');
    fds.push(fd);
    return { fd, path };
  }

  it('write each blob to every place it belongs, at its position', async () => {
    const { bytes, plain, blobs } = span();
    const a = file('a');
    const b = file('b');
    const results = await opener.writeSpan(bytes, [
      {
        ...blobs[0]!,
        writes: [
          { fd: a.fd, position: 0 },
          { fd: b.fd, position: 70_000 },
        ],
      },
      {
        ...blobs[1]!,
        writes: [
          { fd: a.fd, position: 200_000 },
          { fd: b.fd, position: 0 },
        ],
      },
    ]);
    expect(results).toEqual([
      { failures: [undefined, undefined] },
      { failures: [undefined, undefined] },
    ]);
    expect(readFileSync(a.path).equals(Buffer.concat([plain[0]!, plain[1]!]))).toBe(true);
    expect(readFileSync(b.path).equals(Buffer.concat([plain[1]!, plain[0]!]))).toBe(true);
  });

  it('report a failed write by itself, and still make the other writes', async () => {
    const { bytes, plain, blobs } = span();
    const good = file('good');
    const readOnly = openSync(join(dir, 'good'), 'r');
    fds.push(readOnly);
    const results = await opener.writeSpan(bytes, [
      {
        ...blobs[0]!,
        writes: [
          { fd: readOnly, position: 0 },
          { fd: good.fd, position: 0 },
        ],
      },
    ]);
    const [result] = results as [WrittenBlob & { failures: unknown[] }];
    expect(result.failures[0]).toMatchObject({ code: 'EBADF' });
    expect(result.failures[1]).toBeUndefined();
    expect(readFileSync(good.path).equals(plain[0]!)).toBe(true);
  });

  it('write nothing of a damaged blob and name it, while its neighbour is written', async () => {
    const { bytes, plain, blobs } = span();
    bytes[blobs[0]!.offset + 40]! ^= 0x01;
    const a = file('a');
    const b = file('b');
    const results = await opener.writeSpan(bytes, [
      { ...blobs[0]!, writes: [{ fd: a.fd, position: 0 }] },
      { ...blobs[1]!, writes: [{ fd: b.fd, position: 0 }] },
    ]);
    expect(results[0]).toMatchObject({ error: { code: 'VAULT_INTEGRITY' } });
    expect(readFileSync(a.path).byteLength).toBe(0);
    expect(results[1]).toEqual({ failures: [undefined] });
    expect(readFileSync(b.path).equals(plain[1]!)).toBe(true);
  });

  it('write nothing of a blob whose length is not what the index says, and say both', async () => {
    const { bytes, blobs } = span();
    // blobs[0] is compressed, blobs[1] (random bytes) stored as it is: both ways are checked,
    // with the index claiming one byte more and one byte less than each holds.
    const claims = [
      { ...blobs[0]!, rawLength: blobs[0]!.rawLength + 1 },
      { ...blobs[0]!, rawLength: blobs[0]!.rawLength - 1 },
      { ...blobs[1]!, rawLength: blobs[1]!.rawLength + 1 },
      { ...blobs[1]!, rawLength: blobs[1]!.rawLength - 1 },
    ];
    const files = claims.map((_, i) => file(`f${i}`));
    const results = await opener.writeSpan(
      bytes,
      claims.map((claim, i) => ({ ...claim, writes: [{ fd: files[i]!.fd, position: 0 }] })),
    );
    claims.forEach((claim, i) => {
      const holds = claim.rawLength + (i % 2 === 0 ? -1 : 1);
      expect(results[i]).toMatchObject({
        error: {
          code: 'VAULT_INTEGRITY',
          message: expect.stringContaining(
            `holds ${holds} bytes where the index says ${claim.rawLength}`,
          ),
        },
      });
      expect(readFileSync(files[i]!.path).byteLength).toBe(0);
    });
  });
});
