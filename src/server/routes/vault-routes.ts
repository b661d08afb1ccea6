import { z } from 'zod';
import {
  CREATE_VAULT_INPUT,
  NAME,
  UPDATE_VAULT_INPUT,
  type ControlPlane,
  JOB_VIEW,
  VAULT_VIEW,
  listOf,
} from '../../app/index.js';
import { defineRoute, type Route } from '../route.js';

const BY_NAME = z.object({ name: NAME });
const VERIFY_INPUT = z
  .object({
    readDataPercent: z.number().min(0).max(100).optional(),
    /** `secondary`: check a GRS vault's secondary copy. */
    from: z.enum(['primary', 'secondary']).optional(),
  })
  .strict()
  .optional();

/** `/api/vaults`: create or adopt, list, show, settings, delete, verify. */
export function vaultRoutes(plane: ControlPlane): Route[] {
  return [
    defineRoute({
      method: 'POST',
      url: '/api/vaults',
      operationId: 'createVault',
      response: VAULT_VIEW,
      summary: 'Create a vault (or adopt the vault already at the location)',
      description:
        'Unlocked by `passphrase` or `keyFile` (a path on the server). The server adds a key slot of its own for unattended work; the given credential stays the way in without the server.',
      tags: ['vaults'],
      body: CREATE_VAULT_INPUT,
      status: 201,
      handler: ({ body }) => plane.vaults.create(body),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/vaults',
      operationId: 'listVaults',
      response: listOf(VAULT_VIEW),
      summary: 'List vaults with their usage',
      tags: ['vaults'],
      handler: async () => ({ data: await plane.vaults.list() }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/vaults/:name',
      operationId: 'getVault',
      response: VAULT_VIEW,
      summary: 'Show a vault: location, soft-delete settings, usage',
      tags: ['vaults'],
      params: BY_NAME,
      handler: ({ params }) => plane.vaults.show(params.name),
    }),
    defineRoute({
      method: 'PATCH',
      url: '/api/vaults/:name',
      operationId: 'updateVault',
      response: VAULT_VIEW,
      summary: "Change a vault's soft-delete settings",
      description: '`always_on` cannot be turned off again (SETTING_LOCKED).',
      tags: ['vaults'],
      params: BY_NAME,
      body: UPDATE_VAULT_INPUT,
      handler: ({ params, body }) => plane.vaults.update(params.name, body),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/api/vaults/:name',
      operationId: 'deleteVault',
      summary: 'Remove a vault from the server (its data stays at its location)',
      description: 'Refused while the vault holds items, soft-deleted data or unfinished jobs.',
      tags: ['vaults'],
      params: BY_NAME,
      status: 204,
      handler: async ({ params }) => {
        await plane.vaults.remove(params.name);
      },
    }),
    ...(['replication', 'failover', 'reprotect'] as const).map((verb) =>
      defineRoute({
        method: 'POST',
        url: `/api/vaults/:name/${verb}`,
        operationId: {
          replication: 'measureReplication',
          failover: 'failoverVault',
          reprotect: 'reprotectVault',
        }[verb],
        summary: {
          replication: "Measure a GRS vault's replication lag now and show the vault",
          failover: 'Fail a GRS vault over: its secondary becomes the primary; replication pauses',
          reprotect: 'After a failover, resume replication towards the old primary',
        }[verb],
        tags: ['vaults', 'redundancy'],
        params: BY_NAME,
        body: z.object({}).strict().optional(),
        response: VAULT_VIEW,
        handler: ({ params }) => plane.vaults[verb](params.name),
      }),
    ),
    defineRoute({
      method: 'POST',
      url: '/api/vaults/:name/immutability',
      operationId: 'setVaultImmutability',
      summary: 'Make a vault immutable (enabled, reversible; locked, for good) or not',
      description:
        'While enabled or locked, no point can be deleted before its expiry, retention can only be lengthened, and stopping protection with its data deleted is refused; refused attempts are audited.',
      tags: ['vaults', 'immutability'],
      params: BY_NAME,
      body: z.object({ state: z.enum(['disabled', 'enabled', 'locked']) }),
      response: VAULT_VIEW,
      handler: ({ params, body }) => plane.vaults.immutability(params.name, body.state),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/vaults/:name/verify',
      operationId: 'verifyVault',
      response: JOB_VIEW,
      summary: 'Queue a verify job: structure check plus reading a share of the packs',
      tags: ['vaults', 'jobs'],
      params: BY_NAME,
      body: VERIFY_INPUT,
      status: 202,
      handler: ({ params, body }) =>
        plane.vaults.verify(params.name, body?.readDataPercent ?? 10, body?.from ?? 'primary'),
    }),
  ];
}
