import { hostname } from 'node:os';
import { HoldfastError, isHoldfastError } from '../core/index.js';
import { sealObject } from './codec.js';
import type { Vault } from './vault.js';

/** What a lock file says. */
export interface LockInfo {
  readonly host: string;
  readonly pid: number;
  readonly exclusive: boolean;
  readonly purpose: string;
  /** Milliseconds since the epoch. */
  readonly created: number;
  readonly refreshed: number;
}

/** A lock older than this without refresh belongs to a dead or stuck process. */
export const LOCK_STALE_MS = 30 * 60 * 1000;
/** Holders rewrite their lock this often. */
export const LOCK_REFRESH_MS = 5 * 60 * 1000;

/** A held lock; release it when done. */
export interface VaultLock {
  readonly name: string;
  release(): Promise<void>;
}

/** Options of {@link acquireLock}. */
export interface LockOptions {
  readonly exclusive: boolean;
  readonly purpose: string;
  /** How long to wait for conflicting locks to go away (default 0: fail at once). */
  readonly waitMs?: number;
  readonly signal?: AbortSignal;
  /** Called once when the lock must wait, naming the holder. */
  readonly onWait?: (holder: LockInfo) => void;
}

/**
 * Takes a shared (backup, restore) or exclusive (prune) lock. Stale locks — from a process on
 * this host that no longer runs, or not refreshed for {@link LOCK_STALE_MS} — are removed.
 */
export async function acquireLock(vault: Vault, options: LockOptions): Promise<VaultLock> {
  const deadline = vault.clock.now() + (options.waitMs ?? 0);
  let warned = false;
  for (let attempt = 0; ; attempt += 1) {
    const conflict = await findConflict(vault, options.exclusive, undefined);
    if (!conflict) {
      const name = vault.random(16).toString('hex');
      await writeLock(vault, name, options, vault.clock.now());
      // Two processes can both see no conflict and write at once: look again, and back off if
      // the other one won (an exclusive lock never shares).
      const race = await findConflict(vault, options.exclusive, name);
      if (!race) return startRefresh(vault, name, options);
      await vault.backend.delete(`locks/${name}`).catch(() => undefined);
    } else if (!warned) {
      options.onWait?.(conflict);
      warned = true;
    }
    if (vault.clock.now() >= deadline) {
      const holder = conflict ?? (await findConflict(vault, options.exclusive, undefined));
      throw new HoldfastError(
        'VAULT_LOCKED',
        holder
          ? `The vault is locked by ${holder.purpose} (pid ${holder.pid} on ${holder.host}, since ${new Date(holder.created).toISOString()}). Wait for it to finish, or pass a longer --lock-wait.`
          : 'The vault lock is contended; try again.',
      );
    }
    await delay(
      Math.min(1000 * 2 ** Math.min(attempt, 4), 5000) * (0.5 + Math.random() / 2),
      options.signal,
    );
  }
}

/** Reads all lock files, removing stale ones. */
export async function listLocks(vault: Vault): Promise<Array<{ name: string; info: LockInfo }>> {
  const out: Array<{ name: string; info: LockInfo }> = [];
  for (const name of await vault.listObjects('lock')) {
    let info: LockInfo;
    try {
      info = (await vault.loadObject('lock', name)) as LockInfo;
    } catch (error) {
      // A lock removed while listing is simply gone; a damaged one cannot block anybody.
      if (isHoldfastError(error, 'BACKEND_NOT_FOUND') || isHoldfastError(error, 'VAULT_INTEGRITY'))
        continue;
      throw error;
    }
    if (isStale(vault, info)) {
      await vault.backend.delete(`locks/${name}`).catch(() => undefined);
      continue;
    }
    out.push({ name, info });
  }
  return out;
}

function isStale(vault: Vault, info: LockInfo): boolean {
  if (vault.clock.now() - info.refreshed > LOCK_STALE_MS) return true;
  if (info.host !== hostname()) return false;
  try {
    process.kill(info.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function findConflict(
  vault: Vault,
  exclusive: boolean,
  own: string | undefined,
): Promise<LockInfo | undefined> {
  for (const { name, info } of await listLocks(vault)) {
    if (name === own) continue;
    if (exclusive || info.exclusive) return info;
  }
  return undefined;
}

async function writeLock(
  vault: Vault,
  name: string,
  options: LockOptions,
  created: number,
): Promise<void> {
  const info: LockInfo = {
    host: hostname(),
    pid: process.pid,
    exclusive: options.exclusive,
    purpose: options.purpose,
    created,
    refreshed: vault.clock.now(),
  };
  await vault.backend.put(
    `locks/${name}`,
    sealObject(vault.keys.encryption, 'lock', info, vault.random),
  );
}

function startRefresh(vault: Vault, name: string, options: LockOptions): VaultLock {
  const created = vault.clock.now();
  const timer = setInterval(() => {
    writeLock(vault, name, options, created).catch(() => undefined);
  }, LOCK_REFRESH_MS);
  timer.unref();
  return {
    name,
    async release() {
      clearInterval(timer);
      await vault.backend.delete(`locks/${name}`).catch((error: unknown) => {
        if (!isHoldfastError(error, 'BACKEND_NOT_FOUND')) throw error;
      });
    },
  };
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(new HoldfastError('CANCELLED', 'Cancelled while waiting for the vault lock.'));
      },
      { once: true },
    );
  });
}
