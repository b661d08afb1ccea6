/** Human-readable byte count with binary units, e.g. `1.50 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(2)} ${units[unit]}`;
}

/** Formats a duration in seconds as `1h02m03s` / `2m03s` / `3.2s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const s = Math.floor(seconds % 60);
  const m = Math.floor((seconds / 60) % 60);
  const h = Math.floor(seconds / 3600);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}h${pad(m)}m${pad(s)}s` : `${m}m${pad(s)}s`;
}

/** Lower-case hex of a byte array. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** True when every byte of `data` is zero; memcmp-fast. */
export function isAllZero(data: Uint8Array): boolean {
  const zero = zeroBuffer(Math.min(data.byteLength, ZERO_BLOCK));
  for (let offset = 0; offset < data.byteLength; offset += ZERO_BLOCK) {
    const end = Math.min(offset + ZERO_BLOCK, data.byteLength);
    if (Buffer.compare(data.subarray(offset, end), zero.subarray(0, end - offset)) !== 0) {
      return false;
    }
  }
  return true;
}

const ZERO_BLOCK = 1 << 20;
let zeros: Buffer | undefined;
function zeroBuffer(size: number): Buffer {
  if (zeros === undefined || zeros.byteLength < size) zeros = Buffer.alloc(ZERO_BLOCK);
  return zeros;
}
