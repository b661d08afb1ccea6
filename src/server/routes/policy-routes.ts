import { z } from 'zod';
import {
  CREATE_POLICY_INPUT,
  listOf,
  NAME,
  POLICY_BODY,
  POLICY_VIEW,
  type ControlPlane,
} from '../../app/index.js';
import { defineRoute, type Route } from '../route.js';

const BY_NAME = z.object({ name: NAME });

/** `/api/policies`: schedules and retention rules. */
export function policyRoutes(plane: ControlPlane): Route[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/api/policies',
      operationId: 'createPolicy',
      response: POLICY_VIEW,
      summary: 'Create a policy',
      description:
        "`schedule` is an object (docs/policies.md) or text: 'daily 02:00', 'weekly mon,thu 22:00', 'every 4h from 08:00 for 24h', or a 5-field cron expression.",
      tags: ['policies'],
      body: CREATE_POLICY_INPUT,
      status: 201,
      handler: ({ body }) => plane.policies.create(body),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/policies',
      operationId: 'listPolicies',
      response: listOf(POLICY_VIEW),
      summary: 'List policies',
      tags: ['policies'],
      handler: async () => ({ data: await plane.policies.list() }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/policies/:name',
      operationId: 'getPolicy',
      response: POLICY_VIEW,
      summary: 'Show a policy',
      tags: ['policies'],
      params: BY_NAME,
      handler: ({ params }) => plane.policies.show(params.name),
    }),
    defineRoute({
      method: 'PUT',
      url: '/api/policies/:name',
      operationId: 'replacePolicy',
      response: POLICY_VIEW,
      summary: "Replace a policy's schedule and retention",
      description: 'Points already taken keep the expiry they were given.',
      tags: ['policies'],
      params: BY_NAME,
      body: POLICY_BODY,
      handler: ({ params, body }) => plane.policies.update(params.name, body),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/policies/:name',
      operationId: 'deletePolicy',
      summary: 'Delete a policy no item uses',
      tags: ['policies'],
      params: BY_NAME,
      status: 204,
      handler: async ({ params }) => {
        await plane.policies.remove(params.name);
      },
    }),
  ];
}
