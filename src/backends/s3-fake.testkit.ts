import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';

/** The S3 operations {@link FakeS3} implements. */
export const FAKE_S3_OPS = [
  'CreateBucket',
  'PutObject',
  'GetObject',
  'HeadObject',
  'DeleteObject',
  'ListObjectsV2',
  'CreateMultipartUpload',
  'UploadPart',
  'CompleteMultipartUpload',
  'AbortMultipartUpload',
  'PutObjectRetention',
] as const;
/** One of {@link FAKE_S3_OPS}. */
export type FakeS3Op = (typeof FAKE_S3_OPS)[number];

/** An S3 error answer, a dropped connection, or no answer at all. */
export type FakeS3Fault =
  { readonly status: number; readonly code: string; readonly message?: string } | 'reset' | 'hang';

/** Injects `fault` into matching requests: skips `skip` of them, then fires `times` times. */
export interface FakeS3Rule {
  readonly op: FakeS3Op;
  readonly fault: FakeS3Fault;
  readonly skip?: number;
  readonly times?: number;
}

/** One request as the fake saw it, for assertions. */
export interface FakeS3Request {
  readonly op: FakeS3Op;
  readonly key: string;
  readonly headers: IncomingMessage['headers'];
  readonly query: URLSearchParams;
}

/** Options for {@link FakeS3.start}. */
export interface FakeS3Options {
  /** Access key ids it accepts; others get 403 InvalidAccessKeyId echoing the id. Default any. */
  readonly accessKeyIds?: readonly string[];
  /** Smallest part but the last that CompleteMultipartUpload accepts; S3's is 5 MiB. */
  readonly minPartSize?: number;
}

/** An object as the fake stores it. */
export interface FakeS3Object {
  readonly data: Buffer;
  readonly etag: string;
  /** Base64 CRC32 of `data` when it was uploaded with one; returned on checksum-mode GETs. */
  readonly crc32?: string;
  /** S3 Object Lock retention (PutObjectRetention), shown by HEAD and GET. */
  readonly lock?: { readonly mode: 'GOVERNANCE' | 'COMPLIANCE'; readonly until: number };
}

interface Upload {
  readonly bucket: string;
  readonly key: string;
  readonly checksummed: boolean;
  readonly parts: Map<number, { data: Buffer; etag: string; crc32?: string }>;
}

/** One request, parsed. */
interface Call {
  readonly op: FakeS3Op;
  readonly bucket: string;
  readonly key: string;
  readonly query: URLSearchParams;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly body: Buffer;
}

class FakeError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * A strict in-process S3 on 127.0.0.1: just the calls `S3Backend` makes, path-style, with the
 * semantics s3rver lacks (`If-None-Match: *` → 412 on PUT and on completing a multipart upload,
 * CRC32 checks, AWS's multipart checksum rules) and fault injection. It refuses what it does not
 * implement (aws-chunked bodies, delimiters) instead of guessing.
 */
export class FakeS3 {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** Every request, in arrival order. */
  readonly requests: FakeS3Request[] = [];
  /** Ids of the multipart uploads that were aborted. */
  readonly abortedUploads: string[] = [];
  /**
   * Keys deleted or overwritten while locked. A bucket with Object Lock is versioned: S3 then
   * answers success and only hides the locked version behind a delete marker or a new version,
   * so a client that does this has lost sight of data it should have kept.
   */
  readonly lockedChanges: string[] = [];

  readonly #server: Server;
  readonly #options: FakeS3Options;
  readonly #buckets = new Map<string, Map<string, FakeS3Object>>();
  readonly #uploads = new Map<string, Upload>();
  #rules: Array<FakeS3Rule & { seen: number; fired: number }> = [];

  private constructor(server: Server, options: FakeS3Options) {
    this.#server = server;
    this.#options = options;
    this.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Listens on 127.0.0.1 and a free port. */
  static async start(options: FakeS3Options = {}): Promise<FakeS3> {
    let fake: FakeS3 | undefined;
    const server = createServer((req, res) => {
      if (fake !== undefined) void fake.#handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    fake = new FakeS3(server, options);
    return fake;
  }

  /** Creates an empty bucket (or empties an existing one). */
  createBucket(name: string): void {
    this.#buckets.set(name, new Map());
  }

  /** The live objects of a bucket; changing a Buffer in it changes what GET returns. */
  objects(bucket: string): Map<string, FakeS3Object> {
    const objects = this.#buckets.get(bucket);
    if (objects === undefined) throw new Error(`no bucket ${bucket}`);
    return objects;
  }

  /** Multipart uploads begun and neither completed nor aborted. */
  openUploads(): number {
    return this.#uploads.size;
  }

  /** Adds a fault rule. */
  inject(rule: FakeS3Rule): void {
    this.#rules.push({ ...rule, seen: 0, fired: 0 });
  }

  /** Removes all fault rules and forgets the requests and aborted uploads seen. */
  reset(): void {
    this.#rules = [];
    this.requests.length = 0;
    this.abortedUploads.length = 0;
  }

  /** Stops listening and drops open connections (hanging requests included). */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
    const key = rest.map(decodeURIComponent).join('/');
    const op = operation(req.method ?? '', key, url.searchParams);
    try {
      const body = await readAll(req);
      if (op === undefined) throw new FakeError(501, 'NotImplemented', `${req.method} ${req.url}`);
      this.requests.push({ op, key, headers: req.headers, query: url.searchParams });
      const fault = this.#fault(op);
      if (fault === 'reset') return void req.socket.destroy();
      if (fault === 'hang') return;
      if (fault !== undefined) throw new FakeError(fault.status, fault.code, fault.message ?? '');
      this.#authenticate(req);
      verifyBody(req, body);
      this.#dispatch({
        op,
        bucket: decodeURIComponent(bucket),
        key,
        query: url.searchParams,
        req,
        res,
        body,
      });
    } catch (error) {
      const failure =
        error instanceof FakeError ? error : new FakeError(500, 'InternalError', String(error));
      sendError(res, failure, req.method === 'HEAD');
    }
  }

  #fault(op: FakeS3Op): FakeS3Fault | undefined {
    for (const rule of this.#rules) {
      if (rule.op !== op) continue;
      rule.seen += 1;
      if (rule.seen <= (rule.skip ?? 0) || rule.fired >= (rule.times ?? 1)) continue;
      rule.fired += 1;
      return rule.fault;
    }
    return undefined;
  }

  #authenticate(req: IncomingMessage): void {
    const match = /Credential=([^/]+)\//.exec(req.headers.authorization ?? '');
    if (match === null) throw new FakeError(403, 'AccessDenied', 'Anonymous access is refused.');
    const keyId = match[1] ?? '';
    const allowed = this.#options.accessKeyIds;
    if (allowed !== undefined && !allowed.includes(keyId)) {
      // Like S3, echo the id back — and in the message too, as a careless server might.
      throw new FakeError(
        403,
        'InvalidAccessKeyId',
        `The AWS Access Key Id ${keyId} you provided does not exist in our records.`,
        { AWSAccessKeyId: keyId },
      );
    }
  }

  #dispatch(call: Call): void {
    const { op, bucket, key, query, req, res } = call;
    if (op === 'CreateBucket') {
      this.createBucket(bucket);
      return void res.writeHead(200).end();
    }
    const objects = this.#buckets.get(bucket);
    if (objects === undefined) {
      throw new FakeError(404, 'NoSuchBucket', 'The specified bucket does not exist.');
    }
    switch (op) {
      case 'PutObject':
        this.#noteLockedChange(objects, key);
        return putObject(objects, call);
      case 'PutObjectRetention':
        return putRetention(objects, call);
      case 'GetObject':
      case 'HeadObject':
        return getObject(objects, key, req, res, op === 'HeadObject');
      case 'DeleteObject':
        this.#noteLockedChange(objects, key);
        objects.delete(key);
        return void res.writeHead(204).end();
      case 'ListObjectsV2':
        return listObjects(objects, bucket, query, res);
      case 'CreateMultipartUpload':
        return this.#createUpload(bucket, key, req, res);
      case 'UploadPart':
        return this.#uploadPart(call);
      case 'CompleteMultipartUpload':
        return this.#completeUpload(objects, call);
      case 'AbortMultipartUpload':
        this.#upload(bucket, key, query);
        this.#uploads.delete(query.get('uploadId') ?? '');
        this.abortedUploads.push(query.get('uploadId') ?? '');
        return void res.writeHead(204).end();
    }
  }

  #noteLockedChange(objects: Map<string, FakeS3Object>, key: string): void {
    const lock = objects.get(key)?.lock;
    if (lock !== undefined && lock.until > Date.now()) this.lockedChanges.push(key);
  }

  #createUpload(bucket: string, key: string, req: IncomingMessage, res: ServerResponse): void {
    const algorithm = header(req, 'x-amz-checksum-algorithm');
    if (algorithm !== undefined && algorithm !== 'CRC32') {
      throw new FakeError(501, 'NotImplemented', `Checksum algorithm ${algorithm}`);
    }
    const uploadId = randomBytes(12).toString('hex');
    this.#uploads.set(uploadId, {
      bucket,
      key,
      checksummed: algorithm !== undefined,
      parts: new Map(),
    });
    sendXml(
      res,
      200,
      `<InitiateMultipartUploadResult><Bucket>${xml(bucket)}</Bucket><Key>${xml(key)}</Key>` +
        `<UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
    );
  }

  #uploadPart({ bucket, key, query, req, res, body }: Call): void {
    const upload = this.#upload(bucket, key, query);
    const crc = header(req, 'x-amz-checksum-crc32');
    if (upload.checksummed !== (crc !== undefined)) {
      // AWS's rule: a part carries a checksum exactly when the upload was created with one.
      throw new FakeError(
        400,
        'InvalidRequest',
        `Checksum Type mismatch occurred, expected checksum Type: ${upload.checksummed ? 'crc32' : 'null'}`,
      );
    }
    const partNumber = Number(query.get('partNumber'));
    const etag = md5(body);
    upload.parts.set(partNumber, { data: body, etag, ...(crc ? { crc32: crc } : {}) });
    res.writeHead(200, { ETag: etag, ...(crc ? { 'x-amz-checksum-crc32': crc } : {}) });
    res.end();
  }

  #completeUpload(objects: Map<string, FakeS3Object>, call: Call): void {
    const { bucket, key, query, req, res, body } = call;
    const upload = this.#upload(bucket, key, query);
    checkNoneMatch(objects, key, req);
    const listed = [...body.toString('utf8').matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
      number: Number(tag(m[1] ?? '', 'PartNumber')),
      etag: tag(m[1] ?? '', 'ETag')?.replaceAll('&quot;', '"'),
      crc32: tag(m[1] ?? '', 'ChecksumCRC32'),
    }));
    if (listed.length === 0) throw new FakeError(400, 'MalformedXML', 'No parts listed.');
    const chunks: Buffer[] = [];
    for (const [i, part] of listed.entries()) {
      const stored = upload.parts.get(part.number);
      if (
        stored === undefined ||
        stored.etag !== part.etag ||
        (i > 0 && part.number <= listed[i - 1]!.number)
      ) {
        throw new FakeError(400, 'InvalidPart', `Part ${part.number} is missing or out of order.`);
      }
      if (upload.checksummed && part.crc32 !== stored.crc32) {
        throw new FakeError(400, 'InvalidRequest', `Part ${part.number} lacks its checksum.`);
      }
      const last = i === listed.length - 1;
      if (!last && stored.data.length < (this.#options.minPartSize ?? 5 * 1024 * 1024)) {
        throw new FakeError(400, 'EntityTooSmall', 'Your proposed upload is smaller than allowed.');
      }
      chunks.push(stored.data);
    }
    const data = Buffer.concat(chunks);
    const etag = `"${createHash('md5').update(data).digest('hex')}-${listed.length}"`;
    objects.set(key, { data, etag });
    this.#uploads.delete(query.get('uploadId') ?? '');
    sendXml(
      res,
      200,
      `<CompleteMultipartUploadResult><Bucket>${xml(bucket)}</Bucket><Key>${xml(key)}</Key>` +
        `<ETag>${xml(etag)}</ETag></CompleteMultipartUploadResult>`,
    );
  }

  #upload(bucket: string, key: string, query: URLSearchParams): Upload {
    const upload = this.#uploads.get(query.get('uploadId') ?? '');
    if (upload === undefined || upload.bucket !== bucket || upload.key !== key) {
      throw new FakeError(404, 'NoSuchUpload', 'The specified upload does not exist.');
    }
    return upload;
  }
}

function putObject(objects: Map<string, FakeS3Object>, { key, req, res, body }: Call): void {
  checkNoneMatch(objects, key, req);
  const crc = header(req, 'x-amz-checksum-crc32');
  const stored: FakeS3Object = { data: body, etag: md5(body), ...(crc ? { crc32: crc } : {}) };
  objects.set(key, stored);
  res.writeHead(200, { ETag: stored.etag, ...(crc ? { 'x-amz-checksum-crc32': crc } : {}) });
  res.end();
}

/** S3's rules: a lock may be lengthened, never shortened, and COMPLIANCE never weakened. */
function putRetention(objects: Map<string, FakeS3Object>, { key, res, body }: Call): void {
  const object = objects.get(key);
  if (object === undefined)
    throw new FakeError(404, 'NoSuchKey', 'The specified key does not exist.');
  const text = body.toString('utf8');
  const mode = tag(text, 'Mode');
  const until = Date.parse(tag(text, 'RetainUntilDate') ?? '');
  if ((mode !== 'GOVERNANCE' && mode !== 'COMPLIANCE') || !Number.isFinite(until))
    throw new FakeError(400, 'MalformedXML', 'The XML you provided was not well-formed.');
  const old = object.lock;
  if (old !== undefined && old.until > Date.now()) {
    if (until < old.until || (old.mode === 'COMPLIANCE' && mode === 'GOVERNANCE'))
      throw new FakeError(
        403,
        'AccessDenied',
        'Access Denied because object protected by object lock.',
      );
  }
  objects.set(key, { ...object, lock: { mode, until } });
  res.writeHead(200).end();
}

function operation(method: string, key: string, query: URLSearchParams): FakeS3Op | undefined {
  if (key === '') {
    if (method === 'PUT') return 'CreateBucket';
    if (method === 'GET' && query.get('list-type') === '2') return 'ListObjectsV2';
    return undefined;
  }
  if (method === 'PUT' && query.has('retention')) return 'PutObjectRetention';
  if (method === 'PUT') return query.has('uploadId') ? 'UploadPart' : 'PutObject';
  if (method === 'POST' && query.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && query.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'GET') return 'GetObject';
  if (method === 'HEAD') return 'HeadObject';
  if (method === 'DELETE') return query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  return undefined;
}

function getObject(
  objects: Map<string, FakeS3Object>,
  key: string,
  req: IncomingMessage,
  res: ServerResponse,
  head: boolean,
): void {
  const object = objects.get(key);
  if (object === undefined)
    throw new FakeError(404, 'NoSuchKey', 'The specified key does not exist.');
  const size = object.data.length;
  const range = /^bytes=(\d+)-(\d+)$/.exec(header(req, 'range') ?? '');
  if (header(req, 'range') !== undefined && range === null) {
    throw new FakeError(501, 'NotImplemented', 'Only "bytes=first-last" ranges are implemented.');
  }
  const headers: Record<string, string | number> = { ETag: object.etag, 'Accept-Ranges': 'bytes' };
  if (object.lock !== undefined) {
    headers['x-amz-object-lock-mode'] = object.lock.mode;
    headers['x-amz-object-lock-retain-until-date'] = new Date(object.lock.until).toISOString();
  }
  if (range !== null) {
    const first = Number(range[1]);
    const last = Math.min(Number(range[2]), size - 1);
    if (first >= size)
      throw new FakeError(416, 'InvalidRange', 'The requested range is not satisfiable');
    headers['Content-Range'] = `bytes ${first}-${last}/${size}`;
    headers['Content-Length'] = last - first + 1;
    res.writeHead(206, headers);
    return void res.end(head ? undefined : object.data.subarray(first, last + 1));
  }
  if (header(req, 'x-amz-checksum-mode') === 'ENABLED' && object.crc32 !== undefined) {
    headers['x-amz-checksum-crc32'] = object.crc32;
  }
  headers['Content-Length'] = size;
  res.writeHead(200, headers);
  res.end(head ? undefined : object.data);
}

function listObjects(
  objects: Map<string, FakeS3Object>,
  bucket: string,
  query: URLSearchParams,
  res: ServerResponse,
): void {
  if (query.has('delimiter') || query.has('encoding-type') || query.has('start-after')) {
    throw new FakeError(501, 'NotImplemented', 'delimiter, encoding-type and start-after');
  }
  const prefix = query.get('prefix') ?? '';
  const maxKeys = Math.min(Number(query.get('max-keys') ?? '1000'), 1000);
  const token = query.get('continuation-token');
  const after = token === null ? undefined : Buffer.from(token, 'base64url').toString('utf8');
  const keys = [...objects.keys()]
    .filter((key) => key.startsWith(prefix) && (after === undefined || key > after))
    .sort();
  const page = keys.slice(0, maxKeys);
  const truncated = keys.length > page.length;
  const next = truncated ? Buffer.from(page.at(-1) ?? '').toString('base64url') : undefined;
  const contents = page
    .map(
      (key) =>
        `<Contents><Key>${xml(key)}</Key><LastModified>2025-01-01T00:00:00.000Z</LastModified>` +
        `<ETag>${xml(objects.get(key)?.etag ?? '')}</ETag><Size>${objects.get(key)?.data.length ?? 0}</Size>` +
        '<StorageClass>STANDARD</StorageClass></Contents>',
    )
    .join('');
  sendXml(
    res,
    200,
    `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xml(bucket)}</Name>` +
      `<Prefix>${xml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys>` +
      `<IsTruncated>${truncated}</IsTruncated>` +
      (token === null ? '' : `<ContinuationToken>${xml(token)}</ContinuationToken>`) +
      (next === undefined ? '' : `<NextContinuationToken>${next}</NextContinuationToken>`) +
      `${contents}</ListBucketResult>`,
  );
}

function checkNoneMatch(
  objects: Map<string, FakeS3Object>,
  key: string,
  req: IncomingMessage,
): void {
  const noneMatch = header(req, 'if-none-match');
  if (noneMatch === undefined) return;
  if (noneMatch !== '*') throw new FakeError(501, 'NotImplemented', 'If-None-Match other than *');
  if (objects.has(key)) {
    throw new FakeError(
      412,
      'PreconditionFailed',
      'At least one of the pre-conditions you specified did not hold',
    );
  }
}

/** Refuses bodies the fake cannot check, and checks the ones it can like S3 does. */
function verifyBody(req: IncomingMessage, body: Buffer): void {
  if ((header(req, 'content-encoding') ?? '').includes('aws-chunked')) {
    throw new FakeError(501, 'NotImplemented', 'aws-chunked bodies are not implemented.');
  }
  const sha = header(req, 'x-amz-content-sha256');
  if (sha !== undefined && /^[0-9a-f]{64}$/.test(sha)) {
    if (createHash('sha256').update(body).digest('hex') !== sha) {
      throw new FakeError(400, 'XAmzContentSHA256Mismatch', 'The body does not match its SHA-256.');
    }
  }
  const crc = header(req, 'x-amz-checksum-crc32');
  if (crc !== undefined && crc !== crc32Base64(body)) {
    throw new FakeError(
      400,
      'BadDigest',
      'The CRC32 you specified did not match the calculated checksum.',
    );
  }
}

/** Base64 of the big-endian CRC32 of `data`, as S3 writes it. */
export function crc32Base64(data: Uint8Array): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc32(data) >>> 0);
  return bytes.toString('base64');
}

function sendError(res: ServerResponse, error: FakeError, head: boolean): void {
  if (res.headersSent) return void res.destroy();
  const extra = Object.entries(error.extra)
    .map(([name, value]) => `<${name}>${xml(value)}</${name}>`)
    .join('');
  const body =
    `<Error><Code>${xml(error.code)}</Code><Message>${xml(error.message)}</Message>${extra}` +
    '<RequestId>FAKE-REQUEST</RequestId></Error>';
  if (head) return void res.writeHead(error.status).end();
  sendXml(res, error.status, body);
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
  res.writeHead(status, {
    'Content-Type': 'application/xml',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function tag(text: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(text)?.[1];
}

function md5(data: Buffer): string {
  return `"${createHash('md5').update(data).digest('hex')}"`;
}

function xml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
