import { getAttributeSync, listAttributesSync, setAttributeSync } from 'fs-xattr';

/**
 * The xattr library addresses files by string path. A path whose bytes are not valid UTF-8
 * cannot be expressed that way; such entries keep their data and metadata but not their
 * extended attributes (reported by the caller).
 */
function stringPath(path: Buffer): string | undefined {
  const text = path.toString();
  return Buffer.from(text).equals(path) ? text : undefined;
}

/** Extended attributes of a file or directory (not following symlinks), or undefined if none. */
export function readXattrs(path: Buffer): Record<string, Buffer> | undefined {
  const text = stringPath(path);
  if (text === undefined) return undefined;
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
  const text = stringPath(path);
  if (text === undefined)
    throw new Error('extended attributes cannot be set on a path that is not valid UTF-8');
  for (const [name, value] of Object.entries(xattrs))
    setAttributeSync(text, name, Buffer.from(value));
}

function isUnsupported(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENODATA';
}
