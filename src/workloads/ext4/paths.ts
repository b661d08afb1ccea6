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
 * A name for display. UTF-8 names show as they are, except that control characters (a newline,
 * say) are written `\xNN`; in other names every byte that is not printable ASCII is written
 * `\xNN`. Whenever something is escaped, backslashes are doubled, so no escape can be mistaken
 * for a real name's text.
 */
export function displayName(name: Buffer): string {
  if (isUtf8(name)) {
    const text = name.toString('utf8');
    if (!CONTROL.test(text)) return text;
    return text.replace(/\\/g, '\\\\').replace(CONTROL_ALL, (c) => hexEscape(c.charCodeAt(0)));
  }
  let text = '';
  for (const byte of name) {
    if (byte === 0x5c) text += '\\\\';
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += hexEscape(byte);
  }
  return text;
}

const CONTROL = /[\x00-\x1f\x7f]/;
const CONTROL_ALL = /[\x00-\x1f\x7f]/g;

function hexEscape(byte: number): string {
  return `\\x${byte.toString(16).padStart(2, '0')}`;
}

/** How a target is shown in messages. */
export function describeTarget(target: Ext4Target): string {
  if (typeof target === 'number') return `inode ${target}`;
  return typeof target === 'string' ? target : displayName(target);
}
