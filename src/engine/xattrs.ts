import { isUtf8 } from 'node:buffer';
import { closeSync, constants, openSync } from 'node:fs';
import { getAttributeSync, listAttributesSync, setAttributeSync } from 'fs-xattr';

/** Linux `O_PATH`: a descriptor that names a file without opening it for reading or writing. */
const O_PATH = 0o10000000;

/**
 * Runs `fn` with a string path for `path`. The xattr library takes text, so a path whose bytes
 * are not valid UTF-8 is reached through a descriptor: `/proc/self/fd/N` names the very file
 * the descriptor was opened on. For files and directories only (symlinks are never followed).
 */
function withTextPath<T>(path: Buffer, fn: (text: string) => T): T {
  if (isUtf8(path)) return fn(path.toString());
  const fd = openSync(path, O_PATH | constants.O_NOFOLLOW);
  try {
    return fn(`/proc/self/fd/${fd}`);
  } finally {
    closeSync(fd);
  }
}

/** Extended attributes of a file or directory (not following symlinks), or undefined if none. */
export function readXattrs(path: Buffer): Record<string, Buffer> | undefined {
  return withTextPath(path, readXattrsAt);
}

function readXattrsAt(text: string): Record<string, Buffer> | undefined {
  let names: string[];
  try {
    names = listAttributesSync(text);
  } catch (error) {
    // File systems without xattr support have nothing to record.
    if (isUnsupported(error)) return undefined;
    throw error;
  }
  if (names.length === 0) return undefined;
  const out: Record<string, Buffer> = {};
  for (const name of names) out[name] = getAttributeSync(text, name);
  return out;
}

/** Sets extended attributes on a restored file or directory. */
export function writeXattrs(path: Buffer, xattrs: Readonly<Record<string, Buffer>>): void {
  withTextPath(path, (text) => {
    for (const [name, value] of Object.entries(xattrs))
      setAttributeSync(text, name, Buffer.from(value));
  });
}

function isUnsupported(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENODATA';
}
