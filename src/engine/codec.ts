import { Packr } from 'msgpackr';
import { Decompressor } from 'zstd-napi';
import zstd from 'zstd-napi/binding.js';
import { HoldfastError } from '../core/index.js';
import { seal, unseal, type RandomSource, secureRandom } from './crypto.js';
import { releaseBuffer } from './release-buffer.js';

// Plain MessagePack (no msgpackr records extension), so the format is documented and readable
// by any MessagePack implementation.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** Encodes a value as plain MessagePack. */
export function encodeMsgpack(value: unknown): Buffer {
  return packr.pack(value);
}

/** Decodes MessagePack, turning parse failures into VAULT_INTEGRITY naming `what`. */
export function decodeMsgpack(bytes: Uint8Array, what: string): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new HoldfastError('VAULT_INTEGRITY', `${what} cannot be decoded.`, { cause: error });
  }
}

/** First byte of every sealed plaintext: how the payload after it is stored. */
export const PAYLOAD_RAW = 0;
/** Payload compressed with zstd. */
export const PAYLOAD_ZSTD = 1;

// One compression context per level and one decompression context per thread, reused: a fresh
// context per call allocates megabytes each time, which the allocator keeps as resident memory.
const compressors = new Map<number, zstd.CCtx>();
let decompressor: Decompressor | undefined;
// Compressed bytes go to one scratch buffer per thread, grown to the largest bound needed.
// zstd-napi's Compressor allocates a bound-sized buffer per call (and trims it with a second
// copy), a chunk's worth of garbage per chunk that piles up until the thread's next collection.
let scratch = Buffer.alloc(0);

/**
 * Compresses `data` at `level`. The result is a view of this thread's scratch buffer: valid
 * until the next call, so callers copy what they keep.
 */
function compress(data: Uint8Array, level: number): Buffer {
  let compressor = compressors.get(level);
  if (!compressor) {
    compressor = new zstd.CCtx();
    compressor.setParameter(zstd.CParameter.compressionLevel, level);
    compressors.set(level, compressor);
  }
  const bound = zstd.compressBound(data.byteLength);
  if (scratch.byteLength < bound) {
    releaseBuffer(scratch);
    scratch = Buffer.allocUnsafeSlow(bound);
  }
  return scratch.subarray(0, compressor.compress2(scratch, data));
}

function decompress(data: Uint8Array): Buffer {
  decompressor ??= new Decompressor();
  return decompressor.decompress(data);
}

/** Compression settings of a vault. */
export interface CompressionSettings {
  readonly level: number;
}

// Below this size compression rarely pays for its header.
const MIN_COMPRESS = 128;
// Probe a large payload first: incompressible data (media, archives, encrypted files) is then
// detected at a fraction of the cost of compressing it all. Three samples (start, middle, end)
// so that a chunk whose beginning is random but whose rest is text or zeros is still compressed.
const PROBE_SIZE = 16 * 1024;
const PROBE_SAMPLES = 3;

function worthCompressing(data: Uint8Array): boolean {
  if (data.byteLength < PROBE_SIZE * PROBE_SAMPLES * 4) return true;
  const step = Math.floor((data.byteLength - PROBE_SIZE) / (PROBE_SAMPLES - 1));
  for (let i = 0; i < PROBE_SAMPLES; i += 1) {
    const sample = data.subarray(i * step, i * step + PROBE_SIZE);
    if (compress(sample, 1).byteLength < PROBE_SIZE * 0.97) return true;
  }
  return false;
}

/**
 * Frames `data` as `type byte ‖ payload`, compressing with zstd when that saves at least 3%.
 */
export function framePayload(data: Uint8Array, settings: CompressionSettings | null): Buffer {
  return Buffer.concat(framePayloadParts(data, settings));
}

/**
 * {@link framePayload} as its two parts, uncopied: the payload is `data` itself or a view of this
 * thread's compression scratch, valid until the next compression on the thread. For callers
 * that consume both at once (encryption), which spares a copy of every blob.
 */
export function framePayloadParts(
  data: Uint8Array,
  settings: CompressionSettings | null,
): [Buffer, Uint8Array] {
  if (settings !== null && data.byteLength >= MIN_COMPRESS) {
    if (worthCompressing(data)) {
      const packed = compress(data, settings.level);
      if (packed.byteLength < data.byteLength * 0.97) return [TYPE_ZSTD, packed];
    }
  }
  return [TYPE_RAW, data];
}

const TYPE_RAW = Buffer.of(PAYLOAD_RAW);
const TYPE_ZSTD = Buffer.of(PAYLOAD_ZSTD);

// Payloads that are written out and dropped (a restore's file data) are decompressed into one
// scratch buffer per thread instead of a fresh buffer each, so that a span's blobs do not all
// hold memory of their own at once (a tree restore's peak fell by about 12 MiB), and the write
// that follows copies from memory the cache still holds.
let scratchContext: zstd.DCtx | undefined;
let decompressScratch = Buffer.alloc(0);

/**
 * Calls `use` with the payload of `framed`, which the index says holds `expectedLength` bytes,
 * and returns what it returns. A compressed payload is decompressed into this thread's scratch
 * buffer: the view `use` gets is valid only until it returns, so it MUST NOT keep it. Throws
 * VAULT_INTEGRITY naming `what` when the payload cannot be decompressed or holds another length.
 */
export function withUnframedPayload<T>(
  framed: Buffer,
  expectedLength: number,
  what: string,
  use: (payload: Buffer) => T,
): T {
  if (framed[0] !== PAYLOAD_ZSTD) {
    const payload = unframePayload(framed, what);
    if (payload.byteLength !== expectedLength)
      throw payloadLengthError(what, payload.byteLength, expectedLength);
    return use(payload);
  }
  const compressed = framed.subarray(1);
  if (decompressScratch.byteLength < expectedLength) {
    releaseBuffer(decompressScratch);
    decompressScratch = Buffer.allocUnsafeSlow(expectedLength);
  }
  scratchContext ??= new zstd.DCtx();
  let length: number;
  try {
    length = scratchContext.decompress(decompressScratch.subarray(0, expectedLength), compressed);
  } catch (error) {
    // Too little room means the payload holds more than the index says: name both lengths.
    const holds = zstd.getFrameContentSize(compressed);
    if (holds !== null && holds !== expectedLength)
      throw payloadLengthError(what, holds, expectedLength);
    throw new HoldfastError('VAULT_INTEGRITY', `${what} cannot be decompressed.`, { cause: error });
  }
  if (length !== expectedLength) throw payloadLengthError(what, length, expectedLength);
  return use(decompressScratch.subarray(0, length));
}

/**
 * The VAULT_INTEGRITY error for a payload of `what` that holds another length than its index
 * entry says.
 */
export function payloadLengthError(what: string, holds: number, expected: number): HoldfastError {
  return new HoldfastError(
    'VAULT_INTEGRITY',
    `${what} holds ${holds} bytes where the index says ${expected}.`,
  );
}

/** Reverses {@link framePayload}. */
export function unframePayload(framed: Buffer, what: string): Buffer {
  const kind = framed[0];
  const payload = framed.subarray(1);
  if (kind === PAYLOAD_RAW) return payload;
  if (kind === PAYLOAD_ZSTD) {
    try {
      return decompress(payload);
    } catch (error) {
      throw new HoldfastError('VAULT_INTEGRITY', `${what} cannot be decompressed.`, {
        cause: error,
      });
    }
  }
  throw new HoldfastError(
    'VAULT_INTEGRITY',
    `${what} has an unknown payload type ${String(kind)}.`,
  );
}

/** Roles a sealed metadata object can have; each is its own authenticated context. */
export const OBJECT_ROLES = ['config', 'index', 'point', 'lock', 'pack-header'] as const;
/** One of {@link OBJECT_ROLES}. */
export type ObjectRole = (typeof OBJECT_ROLES)[number];

function roleAad(role: ObjectRole): Buffer {
  return Buffer.from(`holdfast v1 ${role}`);
}

/** Seals a metadata value: MessagePack, zstd, AES-256-GCM with the role as associated data. */
export function sealObject(
  key: Buffer,
  role: ObjectRole,
  value: unknown,
  random: RandomSource = secureRandom,
): Buffer {
  return seal(key, framePayload(encodeMsgpack(value), { level: 3 }), roleAad(role), random);
}

/** Opens a sealed metadata value, authenticating it; `what` names it in errors. */
export function unsealObject(
  key: Buffer,
  role: ObjectRole,
  sealed: Uint8Array,
  what: string,
): unknown {
  const framed = unseal(key, sealed, roleAad(role), what);
  return decodeMsgpack(unframePayload(framed, what), what);
}
