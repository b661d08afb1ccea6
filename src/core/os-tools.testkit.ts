import { execFileSync } from 'node:child_process';

/** Commands already found (or installed) in this test process. */
const found = new Set<string>();

/**
 * Makes sure an operating-system command the tests drive is there: when missing and running as
 * root (as CI does), installs its Debian package (`apt-get update` first, waiting for the
 * package lock another test file may hold); otherwise fails saying what to install. Tests that
 * need a tool call this in `beforeAll` and never skip.
 */
export function ensureCommand(command: string, debianPackage: string): void {
  if (found.has(command) || onPath(command)) {
    found.add(command);
    return;
  }
  const hint = `${command} is missing: install the Debian package ${debianPackage} (apt-get install ${debianPackage}).`;
  if (process.getuid?.() !== 0) throw new Error(`${hint} The tests install it only as root.`);
  const apt = (args: string[]) =>
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], {
      stdio: 'pipe',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 900_000,
    });
  // Test files run in parallel and may install at the same moment: the package lists' lock is
  // not covered by the lock timeout on every apt version, so a failed attempt is tried again.
  for (let attempt = 1; ; attempt += 1) {
    try {
      apt(['update', '-q']);
      apt(['install', '-y', '-q', '--no-install-recommends', debianPackage]);
      break;
    } catch (error) {
      if (onPath(command)) break;
      const e = error as { stderr?: Buffer; message: string };
      if (attempt === 3)
        throw new Error(`${hint} Installing it failed: ${e.stderr?.toString() ?? e.message}`);
      execFileSync('sleep', ['10']);
    }
  }
  if (!onPath(command)) throw new Error(`${hint} The package installed, but not the command.`);
  found.add(command);
}

function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v '${command}'`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes an XFS file system with reflink (copy-on-write clones) in a sparse image file under
 * `dir` and mounts it through a loop device at `dir/mnt`: a btrfs/XFS host for tests on an ext4
 * machine. Needs root, xfsprogs (installed when missing) and `mount -o loop`; fails saying so.
 * Returns the mount point and how to unmount it (the loop device goes with it).
 */
export function mountXfs(dir: string): { path: string; unmount: () => void } {
  ensureCommand('mkfs.xfs', 'xfsprogs');
  const volume = `${dir}/xfs.img`;
  const path = `${dir}/mnt`;
  execFileSync('truncate', ['-s', '512M', volume]);
  execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', volume], { stdio: 'pipe' });
  execFileSync('mkdir', ['-p', path]);
  try {
    execFileSync('mount', ['-o', 'loop', volume, path], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `This test needs to mount a file system image through a loop device (mount -o loop, as root): ${String(error)}`,
    );
  }
  return { path, unmount: () => execFileSync('umount', [path], { stdio: 'pipe' }) };
}
