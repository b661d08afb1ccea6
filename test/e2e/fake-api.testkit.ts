/**
 * A stand-in for the Holdfast server's REST API, for testing the CLI's client side without a
 * server: an HTTP server on 127.0.0.1:0 that records every request and answers from routes a
 * test sets, with views shaped like those of `src/app/api-model.ts`.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  ItemView,
  JobView,
  PointView,
  PolicyView,
  TokenView,
  VaultView,
} from '../../src/app/index.js';

/** One request as the fake server saw it. */
export interface SeenRequest {
  readonly method: string;
  /** Path and query, e.g. `/api/jobs?state=failed`. */
  readonly url: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

/** What the fake server answers: a status and a JSON body (none for 204). */
export interface Answer {
  readonly status: number;
  readonly body?: unknown;
}

/** A route's answers: one, a sequence (the last repeats), or a function of the request. */
export type Route = Answer | readonly Answer[] | ((request: SeenRequest) => Answer);

/** The fake API server. */
export class FakeApi {
  readonly requests: SeenRequest[] = [];
  private readonly routes = new Map<string, { route: Route; calls: number }>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Starts a fake server on a free port of 127.0.0.1. */
  static async start(): Promise<FakeApi> {
    let api: FakeApi | undefined;
    const server = createServer((req, res) => {
      void readBody(req).then((text) => {
        const answer = api!.answer(req, text);
        res.statusCode = answer.status;
        if (answer.body === undefined) {
          res.end();
          return;
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(answer.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    api = new FakeApi(server, `http://127.0.0.1:${port}`);
    return api;
  }

  /** Sets what `METHOD /path` answers (the query string is not part of the match). */
  on(method: string, path: string, route: Route): this {
    this.routes.set(`${method} ${path}`, { route, calls: 0 });
    return this;
  }

  /** Forgets routes and recorded requests, for the next test. */
  reset(): void {
    this.routes.clear();
    this.requests.length = 0;
  }

  /** The requests made to `METHOD /path`. */
  seen(method: string, path: string): SeenRequest[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  /** Stops the server. */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: IncomingMessage, text: string): Answer {
    const url = req.url ?? '/';
    const seen: SeenRequest = {
      method: req.method ?? 'GET',
      url,
      path: url.split('?')[0] ?? url,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      body: text === '' ? undefined : (JSON.parse(text) as unknown),
    };
    this.requests.push(seen);
    const entry = this.routes.get(`${seen.method} ${seen.path}`);
    if (entry === undefined) {
      return apiError(404, 'RESOURCE_NOT_FOUND', `No route ${seen.method} ${seen.path}.`);
    }
    const { route } = entry;
    const call = entry.calls++;
    if (typeof route === 'function') return route(seen);
    if (Array.isArray(route)) return route[Math.min(call, route.length - 1)] as Answer;
    return route as Answer;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** An error answer as the API sends it. */
export function apiError(status: number, code: string, message: string, details?: unknown): Answer {
  return { status, body: { error: { code, message, ...(details ? { details } : {}) } } };
}

const T0 = '2025-03-01T01:00:00.000Z';

/** A vault view. */
export function vaultView(name: string, extra: Partial<VaultView> = {}): VaultView {
  return {
    id: `vlt_${name}`,
    name,
    location: `/srv/backup/${name}`,
    immutability: 'disabled',
    secondaryLocation: null,
    replication: null,
    redundancy: 'lrs',
    softDelete: { state: 'on', days: 14 },
    usage: {
      protectedBytes: 3 * 1024 ** 3,
      storedBytes: 1536 * 1024 ** 2,
      dedupRatio: 2,
      points: 12,
      refreshedAt: T0,
    },
    items: 2,
    createdAt: T0,
    ...extra,
  };
}

/** A policy view. */
export function policyView(name: string, extra: Partial<PolicyView> = {}): PolicyView {
  return {
    id: `pol_${name}`,
    name,
    schedule: { kind: 'daily', at: '02:00' },
    scheduleText: 'daily 02:00',
    timezone: 'UTC',
    snapshotDays: 2,
    tier: 'standard',
    retention: { daily: 30 },
    items: 0,
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  };
}

/** An item view. */
export function itemView(name: string, extra: Partial<ItemView> = {}): ItemView {
  return {
    id: `itm_${name}`,
    name,
    workload: 'files',
    paths: ['/etc'],
    excludes: [],
    agent: false,
    machine: null,
    vault: 'main',
    policy: 'nightly',
    state: 'protected',
    nextRunAt: '2025-03-02T02:00:00.000Z',
    lastBackupAt: null,
    lastSuccessAt: null,
    deletedAt: null,
    purgeAt: null,
    points: 0,
    createdAt: T0,
    ...extra,
  };
}

/** A point view. */
export function pointView(id: string, extra: Partial<PointView> = {}): PointView {
  return {
    id,
    item: 'www',
    time: T0,
    tiers: ['snapshot', 'vault'],
    consistency: 'file-system',
    files: 1200,
    bytes: 5 * 1024 ** 2,
    storedBytes: 2 * 1024 ** 2,
    expiresAt: '2025-03-31T01:00:00.000Z',
    snapshotExpiresAt: null,
    ...extra,
  };
}

/** A job view in `state`; `progress` sets the counters of its running (or last) phase. */
export function jobView(
  id: string,
  state: string,
  extra: Partial<JobView> = {},
  progress?: { bytes: number; items: number; totalBytes?: number; totalItems?: number },
): JobView {
  const started = state === 'queued' ? null : T0;
  const ended = ['completed', 'completed_with_warnings', 'failed', 'cancelled'].includes(state)
    ? '2025-03-01T01:01:02.000Z'
    : null;
  const phaseState = ended !== null ? 'done' : state === 'running' ? 'running' : 'pending';
  return {
    id,
    type: 'backup',
    state,
    trigger: 'manual',
    item: 'www',
    vault: 'main',
    params: {},
    phases: [
      {
        name: 'transfer',
        state: phaseState,
        startedAt: started,
        endedAt: ended,
        progress: progress ?? null,
      },
    ],
    result: null,
    errorCount: 0,
    errors: [],
    attempts: [],
    retryCount: 0,
    maxRetries: 3,
    runAfter: T0,
    cancelRequested: false,
    createdAt: T0,
    startedAt: started,
    endedAt: ended,
    ...extra,
  };
}

/** A token view. */
export function tokenView(id: string, name: string, extra: Partial<TokenView> = {}): TokenView {
  return {
    id,
    name,
    scope: 'admin',
    vault: null,
    createdAt: T0,
    lastUsedAt: null,
    revokedAt: null,
    ...extra,
  };
}
