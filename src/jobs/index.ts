/** jobs: policies and schedules, retention, the job runner and scheduler, notifications. */
export * from './policy.js';
export * from './schedule.js';
export * from './schedule-text.js';
export * from './retention.js';
export * from './job-context.js';
export * from './job-runner.js';
export * from './notification-settings.js';
export * from './job-notice.js';
export * from './notifier.js';
export { verifyWebhookSignature } from './webhook.js';
export * from './scheduler.js';
export * from './retention-plan.js';
