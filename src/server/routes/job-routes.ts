import { z } from 'zod';
import { JOB_QUERY, JOB_VIEW, listOf, type ControlPlane } from '../../app/index.js';
import { defineRoute, RESOURCE_ID, type Route } from '../route.js';

const BY_ID = z.object({ id: RESOURCE_ID });

/** `/api/jobs`: list, show, cancel. */
export function jobRoutes(plane: ControlPlane): Route[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/api/jobs',
      operationId: 'listJobs',
      response: listOf(JOB_VIEW),
      summary: 'List jobs, newest first',
      description: '`state` and `type` take comma-separated values.',
      tags: ['jobs'],
      query: JOB_QUERY,
      handler: async ({ query }) => ({ data: await plane.jobs.list(query) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/jobs/:id',
      operationId: 'getJob',
      response: JOB_VIEW,
      summary: 'Show a job with its phases, progress, errors and attempts',
      tags: ['jobs'],
      params: BY_ID,
      handler: ({ params }) => plane.jobs.show(params.id),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/jobs/:id/cancel',
      operationId: 'cancelJob',
      response: JOB_VIEW,
      summary: 'Cancel a job that has not ended',
      tags: ['jobs'],
      params: BY_ID,
      body: z.object({}).strict().optional(),
      status: 202,
      handler: ({ params }) => plane.jobs.cancel(params.id),
    }),
  ];
}
