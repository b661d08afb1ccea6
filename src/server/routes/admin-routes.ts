import { z } from 'zod';
import { CREATE_TOKEN_INPUT, listOf, TOKEN_VIEW, type ControlPlane } from '../../app/index.js';
import { ManualClock } from '../../core/index.js';
import { defineRoute, RESOURCE_ID, type Route } from '../route.js';

/** `/api/tokens` and `/api/settings/notifications`; `/api/debug/clock` with a fake clock only. */
export function adminRoutes(plane: ControlPlane): Route[] {
  const routes = [
    defineRoute({
      method: 'GET',
      url: '/api/tokens',
      operationId: 'listTokens',
      response: listOf(TOKEN_VIEW),
      summary: 'List API tokens (never their secrets)',
      tags: ['tokens'],
      handler: async () => ({ data: await plane.tokens.list() }),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/tokens',
      operationId: 'createToken',
      response: TOKEN_VIEW,
      summary: 'Create an API token; the secret is in this answer only',
      tags: ['tokens'],
      body: CREATE_TOKEN_INPUT,
      status: 201,
      handler: ({ body }) =>
        plane.tokens.create(body.name, body.agentFor ? { agentFor: body.agentFor } : {}),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/tokens/:id',
      operationId: 'revokeToken',
      summary: 'Revoke an API token',
      tags: ['tokens'],
      params: z.object({ id: RESOURCE_ID }),
      status: 204,
      handler: async ({ params }) => {
        await plane.tokens.revoke(params.id);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events',
      operationId: 'listAuditEvents',
      summary: 'The audit trail: changes made through the API, newest first',
      description: '`before` pages back from a sequence number; secrets are never recorded.',
      tags: ['audit'],
      query: z.object({
        limit: z.coerce.number().int().min(1).max(1000).optional(),
        before: z.coerce.number().int().min(1).optional(),
      }),
      handler: async ({ query }) => ({
        data: await plane.audit.list(query.limit ?? 100, query.before),
      }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/settings/notifications',
      operationId: 'getNotificationSettings',
      summary: 'Notification settings (secrets shown as ***)',
      tags: ['settings'],
      handler: async () => plane.notifications.get(),
    }),
    defineRoute({
      method: 'PUT',
      url: '/api/settings/notifications',
      operationId: 'putNotificationSettings',
      summary: 'Replace notification settings (a secret sent as *** keeps the stored one)',
      tags: ['settings'],
      body: z.unknown(),
      handler: async ({ body }) => plane.notifications.put(body),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/settings/notifications/test',
      operationId: 'testNotifications',
      summary: 'Send a test notification to one channel or all',
      tags: ['settings'],
      body: z
        .object({ channel: z.string().max(80).optional() })
        .strict()
        .optional(),
      handler: async ({ body }) => ({ data: await plane.notifications.test(body?.channel) }),
    }),
  ];
  const clock = plane.options.clock;
  if (clock instanceof ManualClock)
    routes.push(
      defineRoute({
        method: 'POST',
        url: '/api/debug/clock',
        operationId: 'advanceClock',
        summary: 'Test servers only: move the fake clock forward and run the scheduler',
        tags: ['debug'],
        body: z
          .object({
            advanceMs: z
              .number()
              .int()
              .min(0)
              .max(10 * 365 * 86_400_000),
          })
          .strict(),
        handler: async ({ body }) => {
          clock.advance(body.advanceMs);
          plane.kick();
          return { now: new Date(clock.now()).toISOString() };
        },
      }),
    );
  return routes;
}
