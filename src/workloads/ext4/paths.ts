import { isUtf8 } from 'node:buffer';
import { badRequest } from './damage.js';
import { MAX_NAME } from './directory.js';

/** Longest path accepted for a lookup, in bytes (PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/** A path inside the file system: text, bytes (for names that are not UTF-8), or an inode number. */
export type Ext4Target = string | Buffer | number;

const SLASH = 0x2f;

/**
 * The names along a path from the root, as bytes. Empty components and `.` are dropped and `..`
 * goes up (lexically: symlinks are never followed). A path over 4096 bytes, a name over 255
 * bytes or a NUL byte is USAGE_INVALID.
 */
export function pathComponents(path: string | Buffer): Buffer[] {
  const bytes = typeof path === 'string' ? Buffer.from(path) : path;
  if (bytes.length > MAX_PATH_BYTES)
    throw badRequest(`A path of ${bytes.length} bytes is longer than ${MAX_PATH_BYTES}`);
  if (bytes.includes(0)) throw badRequest('A path may not contain a NUL byte');
  const names: Buffer[] = [];
  let start = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(SLASH, start);
    if (end === -1) end = bytes.length;
    const name = bytes.subarray(start, end);
    start = end + 1;
    if (name.length === 0 || (name.length === 1 && name[0] === 0x2e)) continue;
    if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) {
      names.pop();
      continue;
    }
    if (name.length > MAX_NAME)
      throw badRequest(`A name of ${name.length} bytes is longer than ${MAX_NAME}`);
    names.push(name);
  }
  return names;
}

/**
 * A name for display: itself when it is UTF-8, else with each byte that is not ASCII written as
 * `\xNN` (and backslashes doubled, so the escape cannot be mistaken for a real name).
 */
export function displayName(name: Buffer): string {
  if (isUtf8(name)) return name.toString('utf8');
  let text = '';
  for (const byte of name) {
    if (byte === 0x5c) text += '\\\\';
    else if (byte < 0x80) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return text;
}

/** How a target is shown in messages. */
export function describeTarget(target: Ext4Target): string {
  if (typeof target === 'number') return `inode ${target}`;
  return typeof target === 'string' ? target : displayName(target);
}
