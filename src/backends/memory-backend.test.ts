import { describe, expect, it } from 'vitest';
import { describeBackendConformance } from './backend-conformance.testkit.js';
import { MemoryBackend } from './memory-backend.js';

describeBackendConformance('MemoryBackend', async () => ({
  backend: new MemoryBackend(),
  cleanup: async () => {},
}));

describe('MemoryBackend test accessors', () => {
  it('objects() is the live store, so tests can corrupt bytes in place', async () => {
    const backend = new MemoryBackend('corrupt');
    await backend.put('packs/p1', Buffer.from('abcd'));
    const stored = backend.objects().get('packs/p1');
    expect(stored).toBeDefined();
    stored?.writeUInt8(0x7a, 0);
    expect((await backend.get('packs/p1')).toString()).toBe('zbcd');
    backend.objects().delete('packs/p1');
    await expect(backend.stat('packs/p1')).rejects.toMatchObject({ code: 'BACKEND_NOT_FOUND' });
  });

  it('snapshot() is a deep copy that later writes do not change', async () => {
    const backend = new MemoryBackend();
    await backend.put('a', Buffer.from('one'));
    const before = backend.snapshot();
    await backend.put('a', Buffer.from('two'));
    await backend.put('b', Buffer.from('new'));
    before.get('a')?.fill(0);
    expect([...before.keys()]).toEqual(['a']);
    expect((await backend.get('a')).toString()).toBe('two');
  });

  it('names its location after the label', () => {
    expect(new MemoryBackend('x').location).toBe('memory:x');
    expect(new MemoryBackend().location).toBe('memory:default');
  });
});
