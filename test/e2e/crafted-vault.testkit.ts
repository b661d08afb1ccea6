/**
 * Writes hand-made recovery points into an existing vault with the engine itself, as an attacker
 * who holds the key (or a bug in another writer) could: trees with names no file system would
 * produce. Used to check that restore refuses them; never used to make ordinary test data.
 */
import { LocalBackend } from '../../src/backends/index.js';
import {
  BlobWriter,
  encodeTree,
  InlineBlobSealer,
  Vault,
  type PointManifest,
  type TreeNode,
} from '../../src/engine/index.js';

/** One entry of a crafted tree; names are raw bytes (a string is taken as UTF-8). */
export type CraftedEntry =
  | { readonly kind: 'file'; readonly name: string | Buffer; readonly content: string | Buffer }
  | { readonly kind: 'dir'; readonly name: string | Buffer; readonly entries: CraftedEntry[] }
  | { readonly kind: 'symlink'; readonly name: string | Buffer; readonly target: string };

/** Where and how a crafted point is written. */
export interface CraftedPoint {
  /** The vault directory (created by `holdfast init`). */
  readonly vault: string;
  readonly passphrase: string;
  /** Entries of the root tree, in this order (duplicates are kept). */
  readonly root: CraftedEntry[];
  /** Point time; the newest time is what `latest` means. */
  readonly time: string;
  readonly paths: string[];
}

const MTIME: readonly [number, number] = [1_700_000_000, 0];

/** Stores the blobs, trees and manifest of a crafted point; returns its id. */
export async function writeCraftedPoint(spec: CraftedPoint): Promise<string> {
  const vault = await Vault.open(new LocalBackend(spec.vault), {
    kind: 'passphrase',
    passphrase: spec.passphrase,
  });
  await vault.loadIndex();
  const sealer = new InlineBlobSealer(vault.keys.encryption, {
    level: vault.config.compressionLevel,
  });
  const writer = new BlobWriter(vault, { sealer });
  let inode = 1000;
  const counts = { files: 0, dirs: 0, others: 0, bytes: 0 };

  const saveTree = async (entries: readonly CraftedEntry[]): Promise<string> => {
    const nodes: TreeNode[] = [];
    for (const entry of entries) {
      const name = typeof entry.name === 'string' ? Buffer.from(entry.name) : entry.name;
      const base = {
        name,
        uid: 0,
        gid: 0,
        mtime: MTIME,
        ctime: MTIME,
        inode: (inode += 1),
        dev: 1,
        nlink: 1,
      };
      if (entry.kind === 'file') {
        const data = Buffer.from(entry.content);
        const content = data.byteLength ? [(await writer.save('data', data)).id] : [];
        counts.files += 1;
        counts.bytes += data.byteLength;
        nodes.push({ ...base, type: 'file', mode: 0o644, size: data.byteLength, content });
      } else if (entry.kind === 'dir') {
        counts.dirs += 1;
        const subtree = await saveTree(entry.entries);
        nodes.push({ ...base, type: 'dir', mode: 0o755, size: 0, subtree });
      } else {
        counts.others += 1;
        nodes.push({
          ...base,
          type: 'symlink',
          mode: 0o777,
          size: 0,
          target: Buffer.from(entry.target),
        });
      }
    }
    // encodeTree sorts by name with a stable sort: duplicate names stay, in the given order.
    return (await writer.save('tree', encodeTree(nodes))).id;
  };

  try {
    const tree = await saveTree(spec.root);
    await writer.flush();
    const manifest: PointManifest = {
      v: 1,
      time: spec.time,
      host: 'crafted-host',
      user: 'root',
      paths: spec.paths,
      tags: ['crafted'],
      tree,
      consistency: 'crash',
      stats: {
        ...counts,
        filesRead: counts.files,
        newBytes: writer.stats.newRawBytes,
        storedBytes: writer.stats.storedBytes,
        errors: 0,
        durationMs: 0,
      },
      program: 'holdfast e2e crafted point',
    };
    return await vault.saveObject('point', manifest);
  } finally {
    await sealer.close();
  }
}
