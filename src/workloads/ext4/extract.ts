import { closeSync, ftruncateSync, writeSync } from 'node:fs';
import { HoldfastError, describeError, throwIfAborted } from '../../core/index.js';
import { unreadable } from './damage.js';
import type { Ext4Volume } from './ext4-volume.js';
import {
  childPath,
  createFile,
  existing,
  finishDirectory,
  finishFile,
  finishSymlink,
  makeDirectory,
  makeHardLink,
  makeSymlink,
  prepareTarget,
  removeEntry,
  unsafeName,
} from './extract-target.js';
import type { Inode } from './inode.js';
import { displayName } from './paths.js';

/** Deeper than any real tree; a hostile image cannot make the walk recurse without end. */
const MAX_DEPTH = 1024;

/** Options of {@link extractFromExt4}. */
export interface Ext4ExtractOptions {
  /**
   * Replace files and symlinks already in the target (removing the entry, never writing
   * through it). Default false: they are left as they are, with a warning.
   */
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
}

/** Something extraction did not do: an entry skipped on purpose, or one that failed. */
export type Ext4ExtractWarning =
  | { readonly kind: 'skipped'; readonly path: string; readonly reason: string }
  | { readonly kind: 'failed'; readonly path: string; readonly error: HoldfastError };

/** What an extraction wrote, and what it did not. */
export interface Ext4ExtractResult {
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  readonly hardLinks: number;
  /** File content written (holes not counted). */
  readonly bytes: number;
  readonly warnings: readonly Ext4ExtractWarning[];
}

/**
 * Copies the files and directories at `paths` (recursively) from an ext2/3/4 volume into the
 * directory `target`, each under its own name (`/` copies the root's content). Regular files
 * keep their holes; symlinks are created as symlinks and never followed; modes, times and (as
 * root) owners are set; hard links within one extraction stay hard links. Device files, FIFOs
 * and sockets are skipped with a warning. Nothing is written outside `target`: unsafe names
 * are refused (RESTORE_UNSAFE_ENTRY) and nothing already in the target is followed.
 *
 * Per-entry problems — damage in the image, a refused name, a failed write — go to `warnings`
 * and the rest goes on. Paths that are not in the image are thrown before anything is written,
 * as are a target that cannot be used (RESTORE_TARGET_INVALID) and cancellation.
 */
export async function extractFromExt4(
  volume: Ext4Volume,
  paths: readonly (string | Buffer)[],
  target: string,
  options: Ext4ExtractOptions = {},
): Promise<Ext4ExtractResult> {
  const sources = [];
  for (const path of paths) sources.push(await volume.lookup(path));
  throwIfAborted(options.signal);
  const root = prepareTarget(target);
  const extraction = new Extraction(volume, options);
  for (const { inode, name } of sources) {
    extraction.startWalk();
    if (name.length === 0) await extraction.rootContent(inode, root);
    else await extraction.entry(name, inode, root, '', 0);
  }
  return extraction.result();
}

class Extraction {
  private files = 0;
  private directories = 0;
  private symlinks = 0;
  private hardLinks = 0;
  private bytes = 0;
  private readonly warnings: Ext4ExtractWarning[] = [];
  /** Directories being extracted, from the top down: meeting one again is a loop. */
  private readonly onPath = new Set<number>();
  /** Directories met in this walk: meeting one again is a directory hard link, which ext4 forbids. */
  private readonly seenDirectories = new Set<number>();
  /** Files with several links: where the first was written. */
  private readonly firstLinks = new Map<number, Buffer>();

  constructor(
    private readonly volume: Ext4Volume,
    private readonly options: Ext4ExtractOptions,
  ) {}

  result(): Ext4ExtractResult {
    const { files, directories, symlinks, hardLinks, bytes, warnings } = this;
    return { files, directories, symlinks, hardLinks, bytes, warnings };
  }

  /** Starts the walk of one requested path: overlapping requests are not directory links. */
  startWalk(): void {
    this.seenDirectories.clear();
  }

  /** Extracts one entry under `parent`; every problem becomes a warning for its path. */
  async entry(name: Buffer, inode: Inode | number, parent: Buffer, shown: string, depth: number) {
    const display = `${shown}/${displayName(name)}`;
    try {
      const unsafe = unsafeName(name);
      if (unsafe !== undefined)
        throw new HoldfastError(
          'RESTORE_UNSAFE_ENTRY',
          `Refused to extract ${display}: ${unsafe}. Nothing was written for it.`,
        );
      const node = typeof inode === 'number' ? await this.volume.inode(inode) : inode;
      const path = childPath(parent, name);
      if (node.type === 'dir') await this.directory(node, path, display, depth);
      else if (node.type === 'file') await this.file(node, path, display);
      else if (node.type === 'symlink') await this.symlink(node, path, display);
      else this.skip(display, `a ${node.type} is not extracted; create it by hand if needed`);
    } catch (error) {
      this.fail(display, error);
    }
  }

  /** Extracts the root directory's entries into the target itself. */
  async rootContent(root: Inode, target: Buffer) {
    try {
      this.admit(root, '/', 0);
      await this.fill(root, target, '', 0);
    } catch (error) {
      this.fail('/', error);
    }
  }

  private async directory(dir: Inode, path: Buffer, display: string, depth: number) {
    this.admit(dir, display, depth);
    const found = existing(path);
    if (found === 'other') {
      if (!this.options.overwrite) return this.skip(display, 'something else is already there');
      throwIfAborted(this.options.signal);
      removeEntry(path);
    }
    if (found !== 'directory') {
      throwIfAborted(this.options.signal);
      makeDirectory(path);
    }
    await this.fill(dir, path, display, depth);
    // Last, so that a read-only directory could be filled and its time is not changed after.
    finishDirectory(path, dir);
    this.directories++;
  }

  /**
   * Refuses a directory met before: on the current path it is a loop; elsewhere a directory hard
   * link, which ext4 does not allow and which could multiply the walk. Either way, damage.
   */
  private admit(dir: Inode, display: string, depth: number): void {
    if (this.onPath.has(dir.number))
      throw unreadable(
        `directory loop: ${display || '/'} (inode ${dir.number}) is its own ancestor`,
      );
    if (this.seenDirectories.has(dir.number))
      throw unreadable(`directory inode ${dir.number} is linked a second time, at ${display}`);
    if (depth > MAX_DEPTH) throw unreadable(`${display} is nested more than ${MAX_DEPTH} deep`);
    this.seenDirectories.add(dir.number);
  }

  private async fill(dir: Inode, path: Buffer, display: string, depth: number) {
    this.onPath.add(dir.number);
    try {
      for await (const record of this.volume.records(dir)) {
        throwIfAborted(this.options.signal);
        await this.entry(record.name, record.inode, path, display, depth + 1);
      }
    } finally {
      this.onPath.delete(dir.number);
    }
  }

  private async file(inode: Inode, path: Buffer, display: string) {
    const first = inode.links > 1 ? this.firstLinks.get(inode.number) : undefined;
    if (!this.makeRoom(path, display)) return;
    throwIfAborted(this.options.signal);
    if (first !== undefined) {
      makeHardLink(first, path);
      this.hardLinks++;
      return;
    }
    const fd = createFile(path);
    let written = 0;
    try {
      for await (const piece of this.volume.content(inode)) {
        throwIfAborted(this.options.signal);
        // Zero pieces are holes: not writing them, then setting the size, keeps them holes.
        if (piece.kind === 'data')
          written += writeSync(fd, piece.bytes, 0, piece.bytes.length, piece.offset);
      }
      ftruncateSync(fd, inode.size);
      finishFile(fd, inode);
    } catch (error) {
      // No half-written file stays behind looking complete.
      removeEntry(path);
      throw error;
    } finally {
      closeSync(fd);
    }
    this.files++;
    this.bytes += written;
    if (inode.links > 1) this.firstLinks.set(inode.number, path);
  }

  private async symlink(inode: Inode, path: Buffer, display: string) {
    const target = await this.volume.readlink(inode.number);
    if (!this.makeRoom(path, display)) return;
    throwIfAborted(this.options.signal);
    makeSymlink(target, path);
    finishSymlink(path, inode);
    this.symlinks++;
  }

  /** Frees `path` for a new file or symlink; false (with a warning) when it must stay. */
  private makeRoom(path: Buffer, display: string): boolean {
    const found = existing(path);
    if (found === 'none') return true;
    if (found === 'directory') {
      this.skip(display, 'a directory is already there');
      return false;
    }
    if (!this.options.overwrite) {
      this.skip(display, 'something is already there (extract with overwrite to replace it)');
      return false;
    }
    throwIfAborted(this.options.signal);
    removeEntry(path);
    return true;
  }

  private skip(path: string, reason: string): void {
    this.warnings.push({ kind: 'skipped', path, reason });
  }

  private fail(path: string, error: unknown): void {
    if (error instanceof HoldfastError) {
      if (error.code === 'CANCELLED') throw error;
      this.warnings.push({ kind: 'failed', path, error });
      return;
    }
    // File-system errors of the target carry an errno code; anything else is a bug to surface.
    if (typeof (error as NodeJS.ErrnoException).code !== 'string') throw error;
    const wrapped = new HoldfastError(
      'RESTORE_WRITE_FAILED',
      `Cannot write ${path}: ${describeError(error)}`,
      { cause: error },
    );
    this.warnings.push({ kind: 'failed', path, error: wrapped });
  }
}
