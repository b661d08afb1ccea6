import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HoldfastError, collect, forEachLimit, type ErrorCode } from '../core/index.js';
import type { Backend, ObjectInfo } from './backend.js';

/** What {@link describeBackendConformance} needs per test: a fresh, empty backend. */
export interface ConformanceFixture {
  readonly backend: Backend;
  /** Removes whatever the backend stored; called after `backend.close()`. */
  cleanup(): Promise<void>;
}

/** A seeded uniform random source in [0, 1) (mulberry32), so failures reproduce. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` reproducible pseudo-random bytes (xorshift32), fast enough for tens of MiB. */
export function seededBytes(seed: number, length: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, length);
}

/** Resolves to the HoldfastError code `promise` rejects with; fails the test if it resolves. */
export async function failureCode(promise: Promise<unknown>): Promise<ErrorCode> {
  const outcome = await promise.then(
    () => ({ resolved: true as const }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) expect.fail('expected the operation to fail, but it succeeded');
  expect(outcome.error).toBeInstanceOf(HoldfastError);
  return (outcome.error as HoldfastError).code;
}

function sortedNames(infos: readonly ObjectInfo[]): string[] {
  return infos.map((info) => info.name).sort();
}

/**
 * Registers the contract of {@link Backend} as a vitest `describe` block. Every backend runs it,
 * the in-memory one included; `makeBackend` is called once per test and must return an empty
 * backend, isolated from other tests.
 */
export function describeBackendConformance(
  label: string,
  makeBackend: () => Promise<ConformanceFixture>,
): void {
  describe(`Backend conformance: ${label}`, () => {
    let fixture: ConformanceFixture | undefined;
    let backend: Backend;

    beforeEach(async () => {
      fixture = await makeBackend();
      backend = fixture.backend;
    });

    afterEach(async () => {
      if (fixture === undefined) return;
      await fixture.backend.close();
      await fixture.cleanup();
      fixture = undefined;
    });

    it('round-trips put and get, and reports the size in stat and list', async () => {
      const data = seededBytes(1, 1000);
      await backend.put('keys/k1', data);
      expect(await backend.get('keys/k1')).toEqual(data);
      expect(await backend.stat('keys/k1')).toEqual({ name: 'keys/k1', size: 1000 });
      expect(await collect(backend.list(''))).toEqual([{ name: 'keys/k1', size: 1000 }]);
    });

    it('replaces an object on a plain put', async () => {
      await backend.put('config', Buffer.from('first version'));
      await backend.put('config', Buffer.from('second'));
      expect((await backend.get('config')).toString()).toBe('second');
      expect((await backend.stat('config')).size).toBe(6);
    });

    it('refuses ifNotExists on an existing name and keeps the original', async () => {
      await backend.put('locks/l1', Buffer.from('original'), { ifNotExists: true });
      const code = await failureCode(
        backend.put('locks/l1', Buffer.from('other'), { ifNotExists: true }),
      );
      expect(code).toBe('BACKEND_EXISTS');
      expect((await backend.get('locks/l1')).toString()).toBe('original');
    });

    it('lets exactly one of many racing ifNotExists puts win', async (context) => {
      if (!backend.capabilities.conditionalPut) context.skip();
      const values = Array.from({ length: 12 }, (_, i) => seededBytes(100 + i, 4096));
      const outcomes = await Promise.allSettled(
        values.map((value) => backend.put('race', value, { ifNotExists: true })),
      );
      const winners = outcomes.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected')
          expect(outcome.reason).toMatchObject({ code: 'BACKEND_EXISTS' });
      }
      expect(await backend.get('race')).toEqual(values[winners[0]!]);
    });

    it('reports BACKEND_NOT_FOUND for get, getRange, stat and delete of a missing object', async () => {
      await backend.put('present', Buffer.from('x'));
      expect(await failureCode(backend.get('missing'))).toBe('BACKEND_NOT_FOUND');
      expect(await failureCode(backend.getRange('missing', 0, 1))).toBe('BACKEND_NOT_FOUND');
      expect(await failureCode(backend.getRange('missing', 0, 0))).toBe('BACKEND_NOT_FOUND');
      expect(await failureCode(backend.stat('missing'))).toBe('BACKEND_NOT_FOUND');
      expect(await failureCode(backend.delete('missing'))).toBe('BACKEND_NOT_FOUND');
      expect(await failureCode(backend.get('present/below'))).toBe('BACKEND_NOT_FOUND');
    });

    it('deletes an object so get, stat and list no longer see it', async () => {
      await backend.put('snapshots/s1', Buffer.from('a'));
      await backend.put('snapshots/s2', Buffer.from('b'));
      await backend.delete('snapshots/s1');
      expect(await failureCode(backend.get('snapshots/s1'))).toBe('BACKEND_NOT_FOUND');
      expect(await failureCode(backend.stat('snapshots/s1'))).toBe('BACKEND_NOT_FOUND');
      expect(sortedNames(await collect(backend.list('')))).toEqual(['snapshots/s2']);
    });

    it('reads ranges in the middle, at the end and past the end', async () => {
      const data = seededBytes(2, 1000);
      await backend.put('packs/ab/ab01', data);
      expect(await backend.getRange('packs/ab/ab01', 100, 200)).toEqual(data.subarray(100, 300));
      expect(await backend.getRange('packs/ab/ab01', 0, 1000)).toEqual(data);
      expect(await backend.getRange('packs/ab/ab01', 990, 10)).toEqual(data.subarray(990));
      // Past the end the result is short, never padded, so callers can detect truncation.
      expect(await backend.getRange('packs/ab/ab01', 995, 10)).toEqual(data.subarray(995));
      expect(await backend.getRange('packs/ab/ab01', 1000, 10)).toHaveLength(0);
      expect(await backend.getRange('packs/ab/ab01', 5000, 10)).toHaveLength(0);
      expect(await backend.getRange('packs/ab/ab01', 10, 0)).toHaveLength(0);
    });

    it('rejects a negative or fractional range with USAGE_INVALID', async () => {
      await backend.put('r', Buffer.from('abc'));
      expect(await failureCode(backend.getRange('r', -1, 2))).toBe('USAGE_INVALID');
      expect(await failureCode(backend.getRange('r', 0, -2))).toBe('USAGE_INVALID');
      expect(await failureCode(backend.getRange('r', 0.5, 2))).toBe('USAGE_INVALID');
    });

    it('stores empty objects', async () => {
      await backend.put('empty', new Uint8Array(0));
      expect(await backend.get('empty')).toHaveLength(0);
      expect(await backend.getRange('empty', 0, 10)).toHaveLength(0);
      expect(await backend.stat('empty')).toEqual({ name: 'empty', size: 0 });
      expect(await collect(backend.list('emp'))).toEqual([{ name: 'empty', size: 0 }]);
    });

    it('round-trips a 24 MiB object', async () => {
      const data = seededBytes(3, 24 * 1024 * 1024 + 7);
      await backend.put('packs/big', data);
      expect((await backend.stat('packs/big')).size).toBe(data.length);
      expect((await backend.get('packs/big')).equals(data)).toBe(true);
      const middle = await backend.getRange('packs/big', 12_345_678, 1_000_000);
      expect(middle.equals(data.subarray(12_345_678, 13_345_678))).toBe(true);
    });

    it('lists by string prefix, not only by directory', async () => {
      const names = [
        'holdfast.json',
        'keys/k1',
        'packs/ab/ab01',
        'packs/ab/ab02',
        'packs/abc/abc1',
        'packs/cd/cd01',
        'snap',
        'snapshots/s1',
      ];
      for (const [i, name] of names.entries()) await backend.put(name, seededBytes(i, i + 1));
      const list = async (prefix: string): Promise<string[]> =>
        sortedNames(await collect(backend.list(prefix)));
      expect(await list('')).toEqual(names);
      expect(await list('packs/')).toEqual(names.slice(2, 6));
      expect(await list('packs/ab')).toEqual(names.slice(2, 5));
      expect(await list('packs/ab/')).toEqual(['packs/ab/ab01', 'packs/ab/ab02']);
      expect(await list('packs/ab/ab0')).toEqual(['packs/ab/ab01', 'packs/ab/ab02']);
      expect(await list('packs/ab/ab01')).toEqual(['packs/ab/ab01']);
      expect(await list('snap')).toEqual(['snap', 'snapshots/s1']);
      expect(await list('packs/zz/')).toEqual([]);
      expect(await list('nothing')).toEqual([]);
      expect(await list('holdfast.json/')).toEqual([]);
      const sizes = await collect(backend.list('packs/cd/'));
      expect(sizes).toEqual([{ name: 'packs/cd/cd01', size: 6 }]);
    });

    it('lists nothing when the backend is empty', async () => {
      expect(await collect(backend.list(''))).toEqual([]);
      expect(await collect(backend.list('packs/'))).toEqual([]);
    });

    it('lists thousands of objects, each exactly once, and can stop early', async () => {
      const names = Array.from({ length: 3000 }, (_, i) => {
        const hex = i.toString(16).padStart(4, '0');
        return `many/${hex.slice(0, 2)}/${hex}`;
      });
      await forEachLimit(names, 32, (name) => backend.put(name, Buffer.from(name)));
      await backend.put('manx', Buffer.from('outside the many/ prefix'));
      const listed = await collect(backend.list('many/'));
      expect(listed).toHaveLength(names.length);
      expect(new Set(listed.map((info) => info.name)).size).toBe(names.length);
      expect(sortedNames(listed)).toEqual([...names].sort());
      for (const info of listed) expect(info.size).toBe(info.name.length);
      let seen = 0;
      for await (const info of backend.list('')) {
        expect(info.name).toMatch(/^man/);
        if (++seen === 10) break;
      }
      expect(seen).toBe(10);
    });

    it('keeps concurrent writes to different names apart', async () => {
      const values = Array.from({ length: 40 }, (_, i) => seededBytes(200 + i, 1000 + i * 997));
      await Promise.all(values.map((value, i) => backend.put(`data/${i}`, value)));
      for (const [i, value] of values.entries()) {
        expect((await backend.get(`data/${i}`)).equals(value)).toBe(true);
      }
    });

    it('leaves one complete value after concurrent writes to the same name', async () => {
      const values = Array.from({ length: 16 }, (_, i) => seededBytes(300 + i, 256 * 1024));
      await Promise.all(values.map((value) => backend.put('index/same', value)));
      const stored = await backend.get('index/same');
      expect(values.some((value) => value.equals(stored))).toBe(true);
      expect(await collect(backend.list('index/'))).toEqual([
        { name: 'index/same', size: 256 * 1024 },
      ]);
    });

    it('does not alias stored bytes with the buffers passed in or out', async () => {
      const input = Buffer.from('original bytes');
      await backend.put('alias', input);
      input.fill(0);
      const first = await backend.get('alias');
      expect(first.toString()).toBe('original bytes');
      first.fill(1);
      const range = await backend.getRange('alias', 0, 8);
      range.fill(2);
      expect((await backend.get('alias')).toString()).toBe('original bytes');
    });

    it('writes nothing once the signal is aborted', async () => {
      const controller = new AbortController();
      controller.abort();
      const { signal } = controller;
      await backend.put('kept', Buffer.from('kept'));
      expect(await failureCode(backend.put('new', Buffer.from('x'), { signal }))).toBe('CANCELLED');
      const conditional = backend.put('new', Buffer.from('x'), { signal, ifNotExists: true });
      expect(await failureCode(conditional)).toBe('CANCELLED');
      expect(await failureCode(backend.put('kept', Buffer.from('changed'), { signal }))).toBe(
        'CANCELLED',
      );
      expect(await failureCode(backend.delete('kept', { signal }))).toBe('CANCELLED');
      expect(await failureCode(backend.stat('new'))).toBe('BACKEND_NOT_FOUND');
      expect((await backend.get('kept')).toString()).toBe('kept');
      expect(sortedNames(await collect(backend.list('')))).toEqual(['kept']);
    });

    it('rejects invalid names and prefixes with USAGE_INVALID', async () => {
      const invalid = ['', '/abs', 'a//b', 'a/', '..', 'a/../b', '../escape', 'a/./b', 'nul\0x'];
      for (const name of invalid) {
        expect(await failureCode(backend.put(name, Buffer.from('x')))).toBe('USAGE_INVALID');
        expect(await failureCode(backend.get(name))).toBe('USAGE_INVALID');
        expect(await failureCode(backend.getRange(name, 0, 1))).toBe('USAGE_INVALID');
        expect(await failureCode(backend.stat(name))).toBe('USAGE_INVALID');
        expect(await failureCode(backend.delete(name))).toBe('USAGE_INVALID');
      }
      for (const prefix of ['/', '/abs', 'a//', '../', 'a/../', 'nul\0']) {
        expect(await failureCode(collect(backend.list(prefix)))).toBe('USAGE_INVALID');
      }
      expect(await collect(backend.list(''))).toEqual([]);
    });
  });
}
