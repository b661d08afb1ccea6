import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/index.js';
import { verifyWebhookSignature } from '../jobs/index.js';
import { startSmtpReceiver, startWebhookReceiver } from '../jobs/notify-receivers.testkit.js';
import { ControlPlane } from './control-plane.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('notifications of finished jobs', () => {
  it('sends a signed webhook and an e-mail when a backup fails, and never shows the secrets', async () => {
    const root = mkdtempSync(join(tmpdir(), 'holdfast-notify-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const hook = await startWebhookReceiver();
    cleanups.push(() => hook.close());
    const smtp = await startSmtpReceiver({ user: 'ops', password: 'smtp-password-123' });
    cleanups.push(() => smtp.close());
    const clock = new ManualClock(Date.UTC(2026, 0, 5));
    const plane = await ControlPlane.open({ dataDir: join(root, 'data'), clock, jobRetries: 0 });
    cleanups.push(() => plane.stop());
    const secret = 'a-webhook-secret-of-some-length';
    await plane.notifications.put({
      webhooks: [{ name: 'ops', url: hook.url, secret }],
      email: {
        host: '127.0.0.1',
        port: smtp.port,
        secure: false,
        user: 'ops',
        password: 'smtp-password-123',
        from: 'holdfast@example.test',
        to: ['oncall@example.test'],
      },
    });
    const shown = JSON.stringify(plane.notifications.get());
    expect(shown).not.toContain(secret);
    expect(shown).not.toContain('smtp-password-123');

    await plane.vaults.create({ name: 'main', passphrase: 'a long test passphrase' });
    await plane.policies.create({ name: 'p', schedule: 'daily 02:00', retention: { daily: 7 } });
    await plane.items.protect({
      name: 'gone',
      paths: [join(root, 'does-not-exist')],
      vault: 'main',
      policy: 'p',
    });
    const job = await plane.items.backupNow('gone');
    await plane.settle();
    expect((await plane.jobs.show(job.id)).state).toBe('failed');
    const deadline = Date.now() + 10_000;
    while ((hook.requests.length === 0 || smtp.messages.length === 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));

    const [request] = hook.requests;
    expect(request?.headers['x-holdfast-event']).toBe('job.failed');
    const ok = verifyWebhookSignature({
      secret,
      timestamp: String(request?.headers['x-holdfast-timestamp']),
      body: request!.body.toString('utf8'),
      signature: String(request?.headers['x-holdfast-signature']),
      nowMs: clock.now(),
    });
    expect(ok).toBe(true);
    const payload = JSON.parse(request!.body.toString('utf8')) as { job: Record<string, unknown> };
    expect(payload.job).toMatchObject({
      id: job.id,
      type: 'backup',
      state: 'failed',
      itemName: 'gone',
      vaultName: 'main',
    });
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]?.rcptTo).toEqual(['oncall@example.test']);
    expect(smtp.messages[0]?.raw).toMatch(/gone/);

    // A job that succeeds is not sent: both channels subscribe to failures only (the default).
    await plane.items.protect({ name: 'fine', paths: [root], vault: 'main', policy: 'p' });
    await plane.items.backupNow('fine');
    await plane.settle();
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.requests).toHaveLength(1);
  });
});
