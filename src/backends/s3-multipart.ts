import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { HoldfastError, forEachLimit, throwIfAborted } from '../core/index.js';

/** S3 accepts at most this many parts in one multipart upload. */
export const MAX_PARTS = 10_000;

/** How long cleaning up a failed upload may delay reporting the failure. */
const ABORT_UPLOAD_TIMEOUT_MS = 10_000;

/** One multipart upload of an object that is already in memory. */
export interface MultipartPut {
  readonly client: S3Client;
  readonly bucket: string;
  readonly key: string;
  /** The object name and the backend's location, for messages. */
  readonly name: string;
  readonly location: string;
  readonly data: Uint8Array;
  /** Wanted part size; raised when the object would otherwise need more than {@link MAX_PARTS}. */
  readonly partSize: number;
  /** Parts in flight at once. */
  readonly concurrency: number;
  /** Complete with `If-None-Match: *`, so the object appears only if the name is free. */
  readonly ifNoneMatch: boolean;
  /**
   * Send a CRC32 with every part and list them on completion. S3 refuses parts with checksums
   * for an upload created without an algorithm, so this must match what the client sends.
   */
  readonly checksums: boolean;
  readonly signal: AbortSignal | undefined;
}

/** The SDK's per-call options for `signal` (it may not be given as `undefined`). */
export function sendOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}

/** The part size actually used for an object of `size` bytes. */
export function effectivePartSize(size: number, partSize: number): number {
  return Math.max(partSize, Math.ceil(size / MAX_PARTS));
}

/**
 * Uploads `data` in parts and completes the upload, which is when the object appears, whole.
 * On any failure or cancellation the upload is aborted so its parts do not linger (and bill);
 * should the abort itself fail, a bucket lifecycle rule for incomplete uploads cleans up.
 * Errors are thrown as the SDK raised them, for the caller to classify.
 */
export async function putMultipart(put: MultipartPut): Promise<void> {
  const { client, bucket: Bucket, key: Key, data, signal } = put;
  const ChecksumAlgorithm = put.checksums ? ('CRC32' as const) : undefined;
  const created = await client.send(
    new CreateMultipartUploadCommand({ Bucket, Key, ChecksumAlgorithm }),
    sendOptions(signal),
  );
  const UploadId = created.UploadId;
  if (UploadId === undefined || UploadId === '') {
    throw new HoldfastError(
      'BACKEND_IO',
      `Writing "${put.name}" in ${put.location} failed: starting a multipart upload returned ` +
        'no upload id, so the server is not S3-compatible enough. Raise the multipart ' +
        'threshold or use another server.',
    );
  }
  try {
    const size = effectivePartSize(data.length, put.partSize);
    const count = Math.ceil(data.length / size);
    const parts: CompletedPart[] = new Array<CompletedPart>(count);
    const indexes = Array.from({ length: count }, (_, i) => i);
    await forEachLimit(indexes, put.concurrency, async (index) => {
      throwIfAborted(signal);
      const start = index * size;
      const end = Math.min(start + size, data.length);
      const Body = Buffer.from(data.buffer, data.byteOffset + start, end - start);
      const PartNumber = index + 1;
      const uploaded = await client.send(
        new UploadPartCommand({
          Bucket,
          Key,
          UploadId,
          PartNumber,
          Body,
          ContentLength: Body.length,
          ChecksumAlgorithm,
        }),
        sendOptions(signal),
      );
      if (uploaded.ETag === undefined) {
        throw new HoldfastError(
          'BACKEND_IO',
          `Writing "${put.name}" in ${put.location} failed: part ${PartNumber} was stored ` +
            'without an ETag, so the server is not S3-compatible enough. Raise the multipart ' +
            'threshold or use another server.',
        );
      }
      const checksum = uploaded.ChecksumCRC32;
      parts[index] = {
        PartNumber,
        ETag: uploaded.ETag,
        ...(checksum ? { ChecksumCRC32: checksum } : {}),
      };
    });
    // Last check before the object becomes visible: a cancelled put leaves nothing behind.
    throwIfAborted(signal);
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: parts },
        IfNoneMatch: put.ifNoneMatch ? '*' : undefined,
      }),
      sendOptions(signal),
    );
  } catch (error) {
    // Not with the caller's signal (a cancelled upload must still be cleaned up), but bounded,
    // so a hung server cannot hold up the report of the original failure.
    await client
      .send(
        new AbortMultipartUploadCommand({ Bucket, Key, UploadId }),
        sendOptions(AbortSignal.timeout(ABORT_UPLOAD_TIMEOUT_MS)),
      )
      .catch(() => {
        // Best effort; the original error is the one that matters.
      });
    throw error;
  }
}
