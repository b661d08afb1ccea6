import type {
  CreateImageInput,
  DiskSnapshotInput,
  DiskSnapshotRestoreInput,
  DiskSnapshotView,
  DeployImageInput,
  DiskImageView,
  DiskBrowseView,
  DiskExportView,
  AuditView,
  CreatePolicyInput,
  CreateVaultInput,
  ItemView,
  JobView,
  ListView,
  PointView,
  PolicyBody,
  PolicyView,
  ProtectInput,
  RestoreInput,
  StopItemInput,
  TokenView,
  UpdateVaultInput,
  VaultView,
} from '../app/index.js';
import type { ApiTransport } from './api-transport.js';

/** Filters of `GET /api/jobs`. */
export interface JobFilter {
  readonly item?: string | undefined;
  readonly state?: string | undefined;
  readonly type?: string | undefined;
  readonly limit?: number | undefined;
}

/** A name or id as one URL path segment. */
function seg(value: string): string {
  return encodeURIComponent(value);
}

/**
 * The REST API of `holdfast server`, one method per call, typed with the API's own request and
 * view types (docs/cli.md lists which command uses which call).
 */
export class ApiClient {
  constructor(private readonly http: ApiTransport) {}

  /** The server's base URL. */
  get url(): string {
    return this.http.access.url;
  }

  createVault(input: CreateVaultInput): Promise<VaultView> {
    return this.http.request('POST', '/api/vaults', input);
  }

  listVaults(): Promise<ListView<VaultView>> {
    return this.http.request('GET', '/api/vaults');
  }

  getVault(name: string): Promise<VaultView> {
    return this.http.request('GET', `/api/vaults/${seg(name)}`);
  }

  updateVault(name: string, input: UpdateVaultInput): Promise<VaultView> {
    return this.http.request('PATCH', `/api/vaults/${seg(name)}`, input);
  }

  deleteVault(name: string): Promise<void> {
    return this.http.request('DELETE', `/api/vaults/${seg(name)}`);
  }

  setImmutability(name: string, state: 'disabled' | 'enabled' | 'locked'): Promise<VaultView> {
    return this.http.request('POST', `/api/vaults/${seg(name)}/immutability`, { state });
  }

  /** `replication` (measure lag), `failover` or `reprotect` a GRS vault. */
  vaultRedundancy(
    name: string,
    verb: 'replication' | 'failover' | 'reprotect',
  ): Promise<VaultView> {
    return this.http.request('POST', `/api/vaults/${seg(name)}/${verb}`);
  }

  verifyVault(
    name: string,
    input: { readDataPercent?: number; from?: 'primary' | 'secondary' },
  ): Promise<JobView> {
    return this.http.request('POST', `/api/vaults/${seg(name)}/verify`, input);
  }

  createPolicy(input: CreatePolicyInput): Promise<PolicyView> {
    return this.http.request('POST', '/api/policies', input);
  }

  listPolicies(): Promise<ListView<PolicyView>> {
    return this.http.request('GET', '/api/policies');
  }

  getPolicy(name: string): Promise<PolicyView> {
    return this.http.request('GET', `/api/policies/${seg(name)}`);
  }

  replacePolicy(name: string, body: PolicyBody): Promise<PolicyView> {
    return this.http.request('PUT', `/api/policies/${seg(name)}`, body);
  }

  deletePolicy(name: string): Promise<void> {
    return this.http.request('DELETE', `/api/policies/${seg(name)}`);
  }

  protect(input: ProtectInput): Promise<ItemView> {
    return this.http.request('POST', '/api/items', input);
  }

  listItems(): Promise<ListView<ItemView>> {
    return this.http.request('GET', '/api/items');
  }

  getItem(name: string): Promise<ItemView> {
    return this.http.request('GET', `/api/items/${seg(name)}`);
  }

  setItemPolicy(name: string, policy: string): Promise<ItemView> {
    return this.http.request('PATCH', `/api/items/${seg(name)}`, { policy });
  }

  stopItem(name: string, input: StopItemInput): Promise<ItemView> {
    return this.http.request('POST', `/api/items/${seg(name)}/stop`, input);
  }

  undeleteItem(name: string): Promise<ItemView> {
    return this.http.request('POST', `/api/items/${seg(name)}/undelete`);
  }

  resumeItem(name: string): Promise<ItemView> {
    return this.http.request('POST', `/api/items/${seg(name)}/resume`);
  }

  backupNow(name: string): Promise<JobView> {
    return this.http.request('POST', `/api/items/${seg(name)}/backup`);
  }

  listPoints(name: string, from?: 'primary' | 'secondary'): Promise<ListView<PointView>> {
    if (from !== undefined)
      return this.http.request('GET', `/api/items/${seg(name)}/points?from=${from}`);
    return this.http.request('GET', `/api/items/${seg(name)}/points`);
  }

  restore(name: string, input: RestoreInput): Promise<JobView> {
    return this.http.request('POST', `/api/items/${seg(name)}/restore`, input);
  }

  browseMachine(name: string, point: string, path: string): Promise<DiskBrowseView> {
    const query = path === '' ? '' : `?path=${encodeURIComponent(path)}`;
    return this.http.request('GET', `/api/items/${seg(name)}/points/${seg(point)}/browse${query}`);
  }

  startExport(name: string, point: string, hours?: number): Promise<DiskExportView> {
    return this.http.request(
      'POST',
      `/api/items/${seg(name)}/points/${seg(point)}/export`,
      hours === undefined ? {} : { hours },
    );
  }

  createImage(input: CreateImageInput): Promise<DiskImageView> {
    return this.http.request('POST', '/api/images', input);
  }

  listImages(): Promise<ListView<DiskImageView>> {
    return this.http.request('GET', '/api/images');
  }

  deleteImage(name: string): Promise<DiskImageView> {
    return this.http.request('DELETE', `/api/images/${seg(name)}`);
  }

  deleteDiskSnapshot(name: string): Promise<DiskSnapshotView> {
    return this.http.request('DELETE', `/api/disk-snapshots/${seg(name)}`);
  }

  deployImage(name: string, input: DeployImageInput): Promise<JobView> {
    return this.http.request('POST', `/api/images/${seg(name)}/deploy`, input);
  }

  snapshotDisk(input: DiskSnapshotInput): Promise<JobView> {
    return this.http.request('POST', '/api/disk-snapshots', input);
  }

  listDiskSnapshots(): Promise<ListView<DiskSnapshotView>> {
    return this.http.request('GET', '/api/disk-snapshots');
  }

  restoreDiskSnapshot(name: string, input: DiskSnapshotRestoreInput): Promise<JobView> {
    return this.http.request('POST', `/api/disk-snapshots/${seg(name)}/restore`, input);
  }

  listExports(): Promise<ListView<DiskExportView>> {
    return this.http.request('GET', '/api/exports');
  }

  stopExport(id: string): Promise<DiskExportView> {
    return this.http.request('DELETE', `/api/exports/${seg(id)}`);
  }

  listJobs(filter: JobFilter = {}): Promise<ListView<JobView>> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) {
      if (value !== undefined) query.set(key, String(value));
    }
    const text = query.toString();
    return this.http.request('GET', `/api/jobs${text ? `?${text}` : ''}`);
  }

  getJob(id: string): Promise<JobView> {
    return this.http.request('GET', `/api/jobs/${seg(id)}`);
  }

  cancelJob(id: string): Promise<JobView> {
    return this.http.request('POST', `/api/jobs/${seg(id)}/cancel`);
  }

  listTokens(): Promise<ListView<TokenView>> {
    return this.http.request('GET', '/api/tokens');
  }

  /** An admin token, or with `agentFor` an append-only agent token for that vault. */
  createToken(name: string, agentFor?: string): Promise<TokenView> {
    return this.http.request('POST', '/api/tokens', {
      name,
      ...(agentFor !== undefined ? { agentFor } : {}),
    });
  }

  revokeToken(id: string): Promise<void> {
    return this.http.request('DELETE', `/api/tokens/${seg(id)}`);
  }

  listAuditEvents(limit: number): Promise<ListView<AuditView>> {
    return this.http.request('GET', `/api/events?limit=${limit}`);
  }
}
