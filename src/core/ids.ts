/** Branded identifiers: a bare string where two kinds could be mixed up is a bug. */
declare const brand: unique symbol;

/** A string that carries a compile-time tag naming what it identifies. */
export type Brand<T, Tag extends string> = T & { readonly [brand]: Tag };

/** Keyed hash (hex, 64 characters) of a blob's plaintext: data chunk or tree. */
export type BlobId = Brand<string, 'BlobId'>;
/** Storage id (hex SHA-256 of the stored bytes) of a pack file. */
export type PackId = Brand<string, 'PackId'>;
/** Storage id (hex SHA-256 of the stored bytes) of a recovery point manifest. */
export type PointId = Brand<string, 'PointId'>;
/** Storage id of an index file. */
export type IndexId = Brand<string, 'IndexId'>;

const HEX_ID = /^[0-9a-f]{64}$/;

/** True when `value` looks like a full 64-hex-digit id. */
export function isHexId(value: string): boolean {
  return HEX_ID.test(value);
}
