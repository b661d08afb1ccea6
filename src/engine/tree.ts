import { HoldfastError } from '../core/index.js';
import { decodeMsgpack, encodeMsgpack } from './codec.js';

/** Kinds of file-system node a tree records. */
export const NODE_TYPES = [
  'file',
  'dir',
  'symlink',
  'fifo',
  'socket',
  'chardev',
  'blockdev',
] as const;
/** One of {@link NODE_TYPES}. */
export type NodeType = (typeof NODE_TYPES)[number];

/** A time with nanoseconds: `[seconds since the epoch, nanoseconds]`. */
export type Timestamp = readonly [number, number];

/**
 * One piece of a file's content: a data blob id (hex), or a hole of this many zero bytes that
 * is neither stored nor written on restore.
 */
export type ContentPiece = string | number;

/** Appends a piece to content, merging a hole into a hole just before it. */
export function appendPiece(content: ContentPiece[], piece: ContentPiece): void {
  const last = content[content.length - 1];
  if (typeof piece === 'number' && typeof last === 'number')
    content[content.length - 1] = last + piece;
  else if (piece !== 0) content.push(piece);
}

/** One entry of a directory. Names and link targets are raw bytes: non-UTF-8 names survive. */
export interface TreeNode {
  readonly name: Buffer;
  readonly type: NodeType;
  /** Permission bits including setuid, setgid and sticky (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly user?: string;
  readonly group?: string;
  /** Modification time. Access times are not recorded: reading a file changes them, and
   * recording them would make every tree new on every backup. Restore sets atime = mtime. */
  readonly mtime: Timestamp;
  readonly ctime: Timestamp;
  readonly size: number;
  readonly inode: number;
  readonly dev: number;
  readonly nlink: number;
  /** Files: content pieces in order. */
  readonly content?: readonly ContentPiece[];
  /** Directories: id of the tree blob of their entries. */
  readonly subtree?: string;
  /** Symlinks: target bytes as stored in the link. */
  readonly target?: Buffer;
  /** Devices: device number. */
  readonly rdev?: number;
  /** Extended attributes, name → value. */
  readonly xattrs?: Readonly<Record<string, Buffer>>;
}

/** Orders nodes by raw name bytes; trees are stored in this order. */
export function compareNodes(a: TreeNode, b: TreeNode): number {
  return Buffer.compare(a.name, b.name);
}

/**
 * True when two nodes hold exactly the same values, so that {@link encodeTree} writes the same
 * bytes for either. A backup uses it to keep the parent point's tree id for a directory whose
 * entries all compare equal, without encoding and hashing the tree again. Extended attributes
 * are compared in order, as msgpack writes object keys in insertion order.
 */
export function sameNode(a: TreeNode, b: TreeNode): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.size === b.size &&
    a.inode === b.inode &&
    a.dev === b.dev &&
    a.nlink === b.nlink &&
    a.user === b.user &&
    a.group === b.group &&
    a.subtree === b.subtree &&
    a.rdev === b.rdev &&
    sameTime(a.mtime, b.mtime) &&
    sameTime(a.ctime, b.ctime) &&
    a.name.equals(b.name) &&
    sameBytes(a.target, b.target) &&
    samePieces(a.content, b.content) &&
    sameXattrs(a.xattrs, b.xattrs)
  );
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
}

function samePieces(
  a: readonly ContentPiece[] | undefined,
  b: readonly ContentPiece[] | undefined,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((piece, i) => piece === b[i]);
}

function sameXattrs(
  a: Readonly<Record<string, Uint8Array>> | undefined,
  b: Readonly<Record<string, Uint8Array>> | undefined,
): boolean {
  if (a === undefined || b === undefined) return a === b;
  const keys = Object.keys(a);
  const otherKeys = Object.keys(b);
  return (
    keys.length === otherKeys.length &&
    keys.every((key, i) => key === otherKeys[i] && sameBytes(a[key], b[key]))
  );
}

/** Encodes a directory's entries into tree-blob bytes (sorted by name). */
export function encodeTree(nodes: readonly TreeNode[]): Buffer {
  const sorted = [...nodes].sort(compareNodes);
  return encodeMsgpack({
    v: 1,
    nodes: sorted.map((n) => {
      const out: Record<string, unknown> = {
        name: n.name,
        type: n.type,
        mode: n.mode,
        uid: n.uid,
        gid: n.gid,
        mtime: n.mtime,
        ctime: n.ctime,
        size: n.size,
        inode: n.inode,
        dev: n.dev,
        nlink: n.nlink,
      };
      if (n.user !== undefined) out['user'] = n.user;
      if (n.group !== undefined) out['group'] = n.group;
      if (n.content !== undefined)
        out['content'] = n.content.map((p) => (typeof p === 'string' ? Buffer.from(p, 'hex') : p));
      if (n.subtree !== undefined) out['subtree'] = Buffer.from(n.subtree, 'hex');
      if (n.target !== undefined) out['target'] = n.target;
      if (n.rdev !== undefined) out['rdev'] = n.rdev;
      if (n.xattrs !== undefined) out['xattrs'] = n.xattrs;
      return out;
    }),
  });
}

/** Decodes and validates tree-blob bytes; `what` names the tree in errors. */
export function decodeTree(bytes: Uint8Array, what: string): TreeNode[] {
  const raw = decodeMsgpack(bytes, what) as { v?: unknown; nodes?: unknown };
  const bad = (why: string): HoldfastError =>
    new HoldfastError('VAULT_INTEGRITY', `${what} is malformed: ${why}.`);
  if (raw === null || typeof raw !== 'object' || raw.v !== 1 || !Array.isArray(raw.nodes))
    throw bad('not a version 1 tree');
  return raw.nodes.map((value: unknown): TreeNode => {
    const n = value as Record<string, unknown>;
    const name = n['name'];
    const type = n['type'];
    if (!(name instanceof Uint8Array) || !NODE_TYPES.includes(type as NodeType))
      throw bad('entry without name or type');
    const node: Record<string, unknown> = {
      name: Buffer.from(name),
      type,
      mode: int(n['mode']),
      uid: int(n['uid']),
      gid: int(n['gid']),
      mtime: time(n['mtime']),
      ctime: time(n['ctime']),
      size: int(n['size']),
      inode: int(n['inode']),
      dev: int(n['dev']),
      nlink: int(n['nlink']),
    };
    if (typeof n['user'] === 'string') node['user'] = n['user'];
    if (typeof n['group'] === 'string') node['group'] = n['group'];
    if (Array.isArray(n['content'])) {
      node['content'] = n['content'].map((p: unknown) => {
        if (p instanceof Uint8Array && p.byteLength === 32) return Buffer.from(p).toString('hex');
        if (Number.isSafeInteger(p) && (p as number) > 0) return p;
        throw bad('bad content piece');
      });
    }
    if (n['subtree'] instanceof Uint8Array)
      node['subtree'] = Buffer.from(n['subtree']).toString('hex');
    if (n['target'] instanceof Uint8Array) node['target'] = Buffer.from(n['target']);
    if (n['rdev'] !== undefined) node['rdev'] = int(n['rdev']);
    if (n['xattrs'] !== null && typeof n['xattrs'] === 'object') node['xattrs'] = n['xattrs'];
    if (type === 'dir' && node['subtree'] === undefined) throw bad('directory without subtree');
    if (type === 'file' && node['content'] === undefined) throw bad('file without content');
    return node as unknown as TreeNode;
  });
}

function int(value: unknown): number {
  return Number.isSafeInteger(value) ? (value as number) : 0;
}

function time(value: unknown): Timestamp {
  if (Array.isArray(value) && value.length === 2) return [int(value[0]), int(value[1])];
  return [0, 0];
}

/** Timestamp from a nanosecond bigint (as `fs.lstat(…, { bigint: true })` gives). */
export function timestampFromNs(ns: bigint): Timestamp {
  const sec = ns / 1_000_000_000n;
  const rem = ns % 1_000_000_000n;
  // Keep nanoseconds non-negative for times before 1970.
  return rem < 0n ? [Number(sec - 1n), Number(rem + 1_000_000_000n)] : [Number(sec), Number(rem)];
}

/** True when two timestamps are equal. */
export function sameTime(a: Timestamp, b: Timestamp): boolean {
  return a[0] === b[0] && a[1] === b[1];
}
