import { inflateRawSync } from 'node:zlib';
import zstd from 'zstd-napi/binding.js';
import type { Qcow2Compression } from './header.js';

/** zstd's window is capped at 4 MiB (clusters are at most 2 MiB): a hostile frame asking for
 * more is refused instead of making the decoder allocate up to its 128 MiB default. */
const ZSTD_WINDOW_LOG_MAX = 22;
let zstdContext: zstd.DCtx | undefined;

/**
 * Decompresses one compressed cluster into exactly `clusterSize` bytes, or throws a plain
 * Error saying why (the caller names the cluster). `data` may carry trailing bytes: the
 * descriptor counts whole sectors, so the stream ends before the data does.
 */
export function decompressCluster(
  compression: Qcow2Compression,
  data: Buffer,
  clusterSize: number,
): Buffer {
  const out = compression === 'zstd' ? unzstd(data, clusterSize) : inflate(data, clusterSize);
  if (out.length !== clusterSize)
    throw new Error(`it decompresses to ${out.length} bytes instead of ${clusterSize}`);
  return out;
}

/** Raw deflate (no zlib header), as qemu writes it; output beyond one cluster is refused. */
function inflate(data: Buffer, clusterSize: number): Buffer {
  try {
    return inflateRawSync(data, { maxOutputLength: clusterSize });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw new Error('it decompresses to more than one cluster', { cause: error });
    throw new Error(`its deflate data is damaged (${(error as Error).message})`, { cause: error });
  }
}

/**
 * One or more zstd frames filling the cluster exactly. Decoding stops when the cluster is
 * full; a step that makes no progress, or a frame still unfinished at the end, is damage.
 */
function unzstd(data: Buffer, clusterSize: number): Buffer {
  if (zstdContext === undefined) {
    zstdContext = new zstd.DCtx();
    zstdContext.setParameter(zstd.DParameter.windowLogMax, ZSTD_WINDOW_LOG_MAX);
  }
  const context = zstdContext;
  const out = Buffer.alloc(clusterSize);
  let written = 0;
  let read = 0;
  let pending = 0;
  try {
    // A previous damaged cluster may have left the context mid-frame.
    context.reset(zstd.ResetDirective.sessionOnly);
    while (written < clusterSize) {
      const [left, produced, consumed] = context.decompressStream(
        out.subarray(written),
        data.subarray(read),
      );
      if (produced === 0 && consumed === 0) throw new Error('its zstd data ends early');
      written += produced;
      read += consumed;
      pending = left;
    }
  } catch (error) {
    throw new Error(`its zstd data is damaged (${(error as Error).message})`, { cause: error });
  }
  if (pending !== 0) throw new Error('its zstd data decompresses to more than one cluster');
  return out;
}
