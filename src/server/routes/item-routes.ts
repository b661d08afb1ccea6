import { z } from 'zod';
import {
  NAME,
  PROTECT_INPUT,
  RESTORE_INPUT,
  STOP_ITEM_INPUT,
  UPDATE_ITEM_INPUT,
  type ControlPlane,
  ITEM_VIEW,
  JOB_VIEW,
  POINT_VIEW,
  listOf,
} from '../../app/index.js';
import { defineRoute, type Route } from '../route.js';

const BY_NAME = z.object({ name: NAME });
const NO_BODY = z.object({}).strict().optional();

/** `/api/items`: protected items, their points, backups and restores. */
export function itemRoutes(plane: ControlPlane): Route[] {
  const action = (verb: 'undelete' | 'resume', operationId: string, summary: string): Route =>
    defineRoute({
      method: 'POST',
      url: `/api/items/:name/${verb}`,
      operationId,
      summary,
      tags: ['items'],
      response: ITEM_VIEW,
      params: BY_NAME,
      body: NO_BODY,
      handler: ({ params }) => plane.items[verb](params.name),
    });
  return [
    defineRoute({
      method: 'POST',
      url: '/api/items',
      operationId: 'protectItem',
      response: ITEM_VIEW,
      summary: 'Protect paths of this host into a vault with a policy',
      tags: ['items'],
      body: PROTECT_INPUT,
      status: 201,
      handler: ({ body }) => plane.items.protect(body),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/items',
      operationId: 'listItems',
      response: listOf(ITEM_VIEW),
      summary: 'List protected items',
      tags: ['items'],
      handler: async () => ({ data: await plane.items.list() }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/items/:name',
      operationId: 'getItem',
      response: ITEM_VIEW,
      summary: 'Show an item: state, next run, last backup, purge date',
      tags: ['items'],
      params: BY_NAME,
      handler: ({ params }) => plane.items.show(params.name),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/api/items/:name',
      operationId: 'changeItemPolicy',
      response: ITEM_VIEW,
      summary: "Change an item's policy",
      tags: ['items'],
      params: BY_NAME,
      body: UPDATE_ITEM_INPUT,
      handler: ({ params, body }) => plane.items.setPolicy(params.name, body.policy),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/items/:name/stop',
      operationId: 'stopProtection',
      response: ITEM_VIEW,
      summary: 'Stop protection, keeping the data or deleting it (soft delete)',
      tags: ['items'],
      params: BY_NAME,
      body: STOP_ITEM_INPUT.optional(),
      handler: ({ params, body }) => plane.items.stop(params.name, body?.deleteData === true),
    }),
    action('undelete', 'undeleteItem', 'Undelete a soft-deleted item (protection stays stopped)'),
    action('resume', 'resumeProtection', 'Resume protection of a stopped item'),
    defineRoute({
      method: 'POST',
      url: '/api/items/:name/backup',
      operationId: 'backupNow',
      response: JOB_VIEW,
      summary: 'Queue a backup of the item now',
      tags: ['items', 'jobs'],
      params: BY_NAME,
      body: NO_BODY,
      status: 202,
      handler: ({ params }) => plane.items.backupNow(params.name),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/items/:name/points',
      operationId: 'listPoints',
      response: listOf(POINT_VIEW),
      summary: "List an item's recovery points with tiers, consistency, size and expiry",
      tags: ['items', 'points'],
      description: "`?from=secondary`: the points a GRS vault's secondary copy holds now.",
      params: BY_NAME,
      query: z.object({ from: z.enum(['primary', 'secondary']).optional() }),
      handler: async ({ params, query }) => ({
        data: await plane.items.points(params.name, query.from ?? 'primary'),
      }),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/items/:name/restore',
      operationId: 'restoreItem',
      response: JOB_VIEW,
      summary: 'Queue a restore of one of the item’s points into a directory',
      tags: ['items', 'jobs'],
      params: BY_NAME,
      body: RESTORE_INPUT,
      status: 202,
      handler: ({ params, body }) => plane.items.restore(params.name, body),
    }),
  ];
}
