/**
 * Where a test's vault lives: a local directory (the default), Azure Blob on a
 * real Azurite, or S3 on a real s3rver — both started here on 127.0.0.1 — with the
 * credentials in the standard environment variables, as an operator sets them. A store also
 * names further vault locations in its container or bucket, and opens any location's objects
 * for tests that look at them or damage them directly (`vault-objects.testkit.ts`).
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { AZURITE_KEY, startAzurite } from './azurite.testkit.js';
import { S3RVER_CLIENT_OPTIONS, S3RVER_CREDENTIALS, startS3rver } from './s3rver.testkit.js';
import { openVaultObjects, type VaultObjects } from './vault-objects.testkit.js';

/** Environment variables for a command; `undefined` removes one. */
export type RunEnv = Record<string, string | undefined>;

/** The kinds of vault location the end-to-end tests run on. */
export const STORE_KINDS = ['local', 'azure', 's3'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/** A started store: the vault location to use (undefined: the sandbox's directory) and its env. */
export interface TestStore {
  readonly kind: StoreKind;
  readonly vault: string | undefined;
  readonly env: RunEnv;
  /** A credential that must never appear in any output. */
  readonly secret: string | undefined;
  /** The environment with a wrong credential. */
  readonly wrongEnv: RunEnv;
  /**
   * Another vault location `name` in the same container or bucket; undefined for 'local', whose
   * vaults are directories the test picks.
   */
  vaultAt(name: string): string | undefined;
  /** The objects of a vault location on this store (a directory for 'local'), read directly. */
  objects(location: string): VaultObjects;
  stop(): Promise<void>;
}

/** Starts the store of `kind` with an empty vault location named after `name`. */
export async function startStore(kind: StoreKind, name: string): Promise<TestStore> {
  if (kind === 'local')
    return {
      kind,
      vault: undefined,
      env: {},
      secret: undefined,
      wrongEnv: {},
      vaultAt: () => undefined,
      objects: (location) => openVaultObjects(location),
      stop: async () => {},
    };
  if (kind === 'azure') {
    const azurite = await startAzurite();
    const wrongKey = Buffer.alloc(64, 1).toString('base64');
    const env = { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString };
    return {
      kind,
      vault: `azure://devstoreaccount1/${name}/vault`,
      env,
      secret: AZURITE_KEY,
      wrongEnv: {
        AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString.replace(AZURITE_KEY, wrongKey),
      },
      vaultAt: (vault) => `azure://devstoreaccount1/${name}/${vault}`,
      objects: (location) => openVaultObjects(location, env),
      stop: () => azurite.stop(),
    };
  }
  const s3rver = await startS3rver();
  await createBucketAt(s3rver.endpoint, name);
  const env = {
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: s3rver.endpoint,
    // Test configuration only: s3rver keeps the SDK's checksum framing inside objects.
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
  };
  return {
    kind,
    vault: `s3://${name}/vault`,
    env,
    secret: `${S3RVER_CREDENTIALS.secretAccessKey}-never-shown`,
    wrongEnv: {
      AWS_ACCESS_KEY_ID: 'NOT-A-KEY-never-shown',
      AWS_SECRET_ACCESS_KEY: 'wrong-never-shown',
    },
    vaultAt: (vault) => `s3://${name}/${vault}`,
    objects: (location) => openVaultObjects(location, env),
    stop: () => s3rver.stop(),
  };
}

/** Creates another bucket on an S3 test store. */
export async function createBucket(store: TestStore, name: string): Promise<void> {
  const endpoint = store.env['AWS_ENDPOINT_URL'];
  if (store.kind !== 's3' || endpoint === undefined) throw new Error('not an S3 test store');
  await createBucketAt(endpoint, name);
}

async function createBucketAt(endpoint: string, name: string): Promise<void> {
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { ...S3RVER_CREDENTIALS },
    ...S3RVER_CLIENT_OPTIONS,
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
}
