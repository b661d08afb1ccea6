import { readFileSync } from 'node:fs';

/** Maps numeric user and group ids to names using the local passwd and group databases. */
export class IdNames {
  private readonly users: Map<number, string>;
  private readonly groups: Map<number, string>;

  constructor(passwdFile = '/etc/passwd', groupFile = '/etc/group') {
    this.users = readIdFile(passwdFile);
    this.groups = readIdFile(groupFile);
  }

  /** User name of `uid`, if known. */
  user(uid: number): string | undefined {
    return this.users.get(uid);
  }

  /** Group name of `gid`, if known. */
  group(gid: number): string | undefined {
    return this.groups.get(gid);
  }

  /** Reverse lookups for restore: name → id. */
  uidOf(name: string): number | undefined {
    for (const [id, n] of this.users) if (n === name) return id;
    return undefined;
  }

  /** Group id of a group name. */
  gidOf(name: string): number | undefined {
    for (const [id, n] of this.groups) if (n === name) return id;
    return undefined;
  }
}

function readIdFile(file: string): Map<number, string> {
  const out = new Map<number, string>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // No database (minimal containers): numeric ids only.
    return out;
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    const n = Number(id);
    if (name && Number.isInteger(n) && !out.has(n)) out.set(n, name);
  }
  return out;
}
