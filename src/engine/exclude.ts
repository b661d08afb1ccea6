/**
 * Exclude patterns for backups. A pattern without `/` matches an entry's name at any depth; a
 * pattern with `/` matches the whole absolute path (a leading `/` anchors it at the root,
 * otherwise it may match any trailing part). `*` and `?` stay within one name, `**` crosses
 * directories, `[abc]` is a class. A matching directory is skipped with everything below it.
 */
export class ExcludeMatcher {
  private readonly byName: RegExp[] = [];
  private readonly byPath: RegExp[] = [];

  constructor(patterns: readonly string[]) {
    for (const raw of patterns) {
      const pattern = raw.trim();
      if (pattern === '') continue;
      if (pattern.includes('/')) {
        const trimmed = pattern.endsWith('/') ? pattern.slice(0, -1) : pattern;
        const anchored = trimmed.startsWith('/');
        const body = globToRegex(anchored ? trimmed.slice(1) : trimmed);
        this.byPath.push(new RegExp(anchored ? `^/${body}$` : `(^|/)${body}$`));
      } else {
        this.byName.push(new RegExp(`^${globToRegex(pattern)}$`));
      }
    }
  }

  /** True when nothing is excluded, so callers can skip the string conversions. */
  get empty(): boolean {
    return this.byName.length === 0 && this.byPath.length === 0;
  }

  /** True when the entry at `path` (absolute) named `name` is excluded. */
  matches(path: string, name: string): boolean {
    return this.byName.some((re) => re.test(name)) || this.byPath.some((re) => re.test(path));
  }
}

/** Parses an exclude file: one pattern per line, `#` comments and blank lines ignored. */
export function parseExcludeFile(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
}

function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i += 1) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more whole directories; a bare `**` anything at all.
        if (glob[i + 2] === '/') {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) {
        out += '\\[';
      } else {
        let cls = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
        if (cls.startsWith('!')) cls = '^' + cls.slice(1);
        out += `[${cls}]`;
        i = close;
      }
    } else {
      out += c.replace(/[.+^${}()|\\]/g, '\\$&');
    }
  }
  return out;
}
