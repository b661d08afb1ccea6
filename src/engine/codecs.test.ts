import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sealBlob, unsealBlob, type BlobType } from './blob-codec.js';
import { blobIdOf, deriveVaultKeys, seal, unseal } from './crypto.js';
import { PACK_TRAILER_SIZE, PackBuilder, parsePackHeader, parsePackTrailer } from './pack.js';
import { decodeTree, encodeTree, sameNode, type NodeType, type TreeNode } from './tree.js';
import { decodeIndexFile, encodeIndexFile } from './vault-index.js';

const keys = deriveVaultKeys(Buffer.alloc(32, 1), 'ab'.repeat(32));

const timestamp = fc.tuple(
  fc.integer({ min: -2_000_000_000, max: 4_000_000_000 }),
  fc.integer({ min: 0, max: 999_999_999 }),
);
const id = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => Buffer.from(b).toString('hex'));
const name = fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b));

const node: fc.Arbitrary<TreeNode> = fc
  .record({
    name,
    type: fc.constantFrom<NodeType>('file', 'dir', 'symlink', 'fifo', 'chardev'),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    uid: fc.nat(),
    gid: fc.nat(),
    user: fc.option(fc.string(), { nil: undefined }),
    mtime: timestamp,
    ctime: timestamp,
    size: fc.nat(),
    inode: fc.nat(),
    dev: fc.nat(),
    nlink: fc.nat(),
    content: fc.array(fc.oneof(id, fc.integer({ min: 1, max: 2 ** 40 }))),
    subtree: id,
    target: fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)),
    rdev: fc.nat(),
  })
  .map((r) => {
    const base = {
      name: r.name,
      type: r.type,
      mode: r.mode,
      uid: r.uid,
      gid: r.gid,
      mtime: r.mtime,
      ctime: r.ctime,
      size: r.size,
      inode: r.inode,
      dev: r.dev,
      nlink: r.nlink,
    };
    const user = r.user !== undefined ? { user: r.user } : {};
    switch (r.type) {
      case 'file':
        return { ...base, ...user, content: r.content };
      case 'dir':
        return { ...base, ...user, subtree: r.subtree };
      case 'symlink':
        return { ...base, ...user, target: r.target };
      case 'chardev':
        return { ...base, ...user, rdev: r.rdev };
      default:
        return { ...base, ...user };
    }
  });

/** A node with group and extended attributes besides, which {@link node} leaves out. */
const fullNode: fc.Arbitrary<TreeNode> = fc
  .tuple(
    node,
    fc.option(fc.string(), { nil: undefined }),
    fc.option(
      fc.dictionary(
        fc.string({ minLength: 1, maxLength: 8 }),
        fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
        { maxKeys: 3 },
      ),
      { nil: undefined },
    ),
  )
  .map(([n, group, xattrs]) => ({
    ...n,
    ...(group !== undefined ? { group } : {}),
    ...(xattrs !== undefined ? { xattrs } : {}),
  }));

/** One field of a node set to another value (perhaps the same one), or nothing changed. */
const mutation: fc.Arbitrary<(n: TreeNode) => TreeNode> = fc.oneof(
  fc.constant((n: TreeNode) => ({ ...n })),
  fc.nat({ max: 3 }).map((v) => (n: TreeNode) => ({ ...n, mode: v })),
  fc.nat({ max: 3 }).map((v) => (n: TreeNode) => ({ ...n, nlink: v })),
  fc
    .integer({ min: 0, max: 1 })
    .map((v) => (n: TreeNode) => ({ ...n, mtime: [n.mtime[0], v] as const })),
  fc
    .integer({ min: 0, max: 1 })
    .map((v) => (n: TreeNode) => ({ ...n, ctime: [v, n.ctime[1]] as const })),
  fc.constantFrom('a', 'b').map((v) => (n: TreeNode) => ({ ...n, user: v })),
  fc.constantFrom('a', undefined).map((v) => (n: TreeNode) => {
    const { group: _group, ...rest } = n;
    return v === undefined ? rest : { ...rest, group: v };
  }),
  fc.constant((n: TreeNode) => ({ ...n, name: Buffer.concat([n.name, Buffer.from([0])]) })),
  fc.constant((n: TreeNode) =>
    n.content ? { ...n, content: [...n.content.slice(1), ...n.content.slice(0, 1)] } : n,
  ),
  fc.constant((n: TreeNode) =>
    n.target ? { ...n, target: Buffer.from(n.target.subarray(0, -1)) } : n,
  ),
  fc.constant((n: TreeNode) =>
    // Same attributes, listed in the other order: stored differently, so not the same node.
    n.xattrs ? { ...n, xattrs: Object.fromEntries(Object.entries(n.xattrs).reverse()) } : n,
  ),
  fc.constant((n: TreeNode) => ({ ...n, xattrs: { ...n.xattrs, 'user.x': Buffer.from('1') } })),
);

describe('format codecs (property-based)', () => {
  it('two nodes are the same node exactly when they encode to the same tree bytes', () => {
    fc.assert(
      fc.property(fullNode, mutation, (a, mutate) => {
        const b = mutate(a);
        const sameBytes = encodeTree([a]).equals(encodeTree([b]));
        expect(sameNode(a, b)).toBe(sameBytes);
        expect(sameNode(b, a)).toBe(sameBytes);
        // A decoded node is the same as the node it was encoded from.
        const [decoded] = decodeTree(encodeTree([a]), 'tree');
        expect(sameNode(decoded!, a)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('trees round-trip exactly, sorted by raw name bytes', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(node, { selector: (n) => n.name.toString('hex'), maxLength: 20 }),
        (nodes) => {
          const decoded = decodeTree(encodeTree(nodes), 'tree');
          const sorted = [...nodes].sort((a, b) => Buffer.compare(a.name, b.name));
          expect(decoded).toEqual(sorted);
        },
      ),
    );
  });

  it('blobs round-trip through compression and encryption, and any flipped bit is detected', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 5000 }),
        fc.constantFrom<BlobType>('data', 'tree'),
        fc.nat(),
        (data, type, flip) => {
          const blobId = blobIdOf(keys.id, data);
          const sealed = sealBlob(keys.encryption, type, blobId, data, { level: 3 });
          expect(unsealBlob(keys.encryption, type, blobId, sealed).equals(Buffer.from(data))).toBe(
            true,
          );
          const damaged = Buffer.from(sealed);
          const bit = flip % (damaged.byteLength * 8);
          damaged[bit >> 3]! ^= 1 << (bit & 7);
          expect(() => unsealBlob(keys.encryption, type, blobId, damaged)).toThrow(
            /authentication/,
          );
          // The same bytes presented as another blob fail too: ids are bound to ciphertexts.
          expect(() =>
            unsealBlob(keys.encryption, type, blobIdOf(keys.id, Buffer.from('other')), sealed),
          ).toThrow();
        },
      ),
    );
  });

  it('packs round-trip: header lists every blob where it is, each blob opens', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { maxLength: 12 }),
        (blobs) => {
          const builder = new PackBuilder();
          for (const data of blobs) {
            const blobId = blobIdOf(keys.id, data);
            builder.add(
              'data',
              blobId,
              sealBlob(keys.encryption, 'data', blobId, data, { level: 1 }),
              data.byteLength,
            );
          }
          const pack = builder.finish(keys.encryption);
          const trailer = pack.bytes.subarray(pack.bytes.byteLength - PACK_TRAILER_SIZE);
          const headerLength = parsePackTrailer(trailer, pack.id, pack.bytes.byteLength);
          const headerStart = pack.bytes.byteLength - PACK_TRAILER_SIZE - headerLength;
          const entries = parsePackHeader(
            keys.encryption,
            pack.bytes.subarray(headerStart, headerStart + headerLength),
            pack.id,
            headerStart,
          );
          expect(entries).toEqual(pack.blobs);
          entries.forEach((entry, i) => {
            const sealed = pack.bytes.subarray(entry.offset, entry.offset + entry.length);
            expect(
              unsealBlob(keys.encryption, 'data', entry.id, sealed).equals(Buffer.from(blobs[i]!)),
            ).toBe(true);
          });
        },
      ),
    );
  });

  it('packs are the same bytes whether their buffer starts tiny, grows, or is reused', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { maxLength: 12 }),
        (blobs) => {
          const build = (builder: PackBuilder): Buffer => {
            let counter = 0;
            const random = (size: number): Buffer => Buffer.alloc(size, (counter += 1));
            for (const data of blobs) {
              const blobId = blobIdOf(keys.id, data);
              const sealed = sealBlob(keys.encryption, 'data', blobId, data, null, random);
              builder.add('data', blobId, sealed, data.byteLength);
            }
            return Buffer.from(builder.finish(keys.encryption, random).bytes);
          };
          const first = new PackBuilder(Buffer.alloc(7));
          const expected = build(first);
          expect(build(new PackBuilder())).toEqual(expected);
          expect(build(new PackBuilder(first.takeBuffer()))).toEqual(expected);
        },
      ),
    );
  });

  it('index files round-trip', () => {
    const blob = fc.record({
      type: fc.constantFrom<BlobType>('data', 'tree'),
      id,
      offset: fc.nat(),
      length: fc.nat(),
      rawLength: fc.nat(),
    });
    fc.assert(
      fc.property(
        fc.array(fc.record({ id, blobs: fc.array(blob, { maxLength: 5 }) }), { maxLength: 5 }),
        fc.array(id, { maxLength: 3 }),
        (packs, supersedes) => {
          expect(decodeIndexFile(encodeIndexFile({ packs, supersedes }), 'index')).toEqual({
            packs,
            supersedes,
          });
        },
      ),
    );
  });

  it('sealed objects are bound to their role', () => {
    const sealed = seal(keys.encryption, Buffer.from('x'), Buffer.from('holdfast v1 point'));
    expect(unseal(keys.encryption, sealed, Buffer.from('holdfast v1 point'), 'p').toString()).toBe(
      'x',
    );
    expect(() => unseal(keys.encryption, sealed, Buffer.from('holdfast v1 index'), 'p')).toThrow(
      /authentication/,
    );
  });
});
