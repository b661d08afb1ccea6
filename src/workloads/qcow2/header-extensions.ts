import { readU64, unreadable } from './unreadable.js';

const END = 0;
const FEATURE_NAME_TABLE = 0x6803f857;
const BITMAPS = 0x23852875;
const EXTERNAL_DATA_FILE = 0x44415441;
const FEATURE_NAME_ENTRY = 48;

/** The feature kinds of the feature name table, as numbered there. */
export type FeatureKind = 'incompatible' | 'compatible' | 'autoclear';
const FEATURE_KINDS: readonly FeatureKind[] = ['incompatible', 'compatible', 'autoclear'];

/** Where the bitmaps extension says the bitmap directory is; checked by dirty-bitmaps.ts. */
export interface BitmapsExtension {
  readonly count: number;
  readonly directorySize: number;
  readonly directoryOffset: number;
}

/** What the header extensions of the first cluster say that this reader uses. */
export interface HeaderExtensions {
  /** Names of feature bits, keyed `kind:bit`, for naming a refused feature. */
  readonly featureNames: ReadonlyMap<string, string>;
  readonly bitmaps: BitmapsExtension | undefined;
  readonly externalDataFile: string | undefined;
}

/**
 * Walks the header extensions from `start` (the end of the fixed header) to the end of the
 * first cluster. Each extension is `type u32, length u32, data` padded to 8 bytes; type 0 ends
 * the list. Unknown types are skipped, as the format asks. An extension that runs past the
 * first cluster is damage: the walk never reads outside `cluster`.
 */
export function readHeaderExtensions(
  cluster: Buffer,
  start: number,
  image: string,
): HeaderExtensions {
  const featureNames = new Map<string, string>();
  let bitmaps: BitmapsExtension | undefined;
  let externalDataFile: string | undefined;
  let at = start;
  // Every step advances at least 8 bytes, so the walk ends within a cluster's worth of steps.
  while (at + 8 <= cluster.length) {
    const type = cluster.readUInt32BE(at);
    const length = cluster.readUInt32BE(at + 4);
    if (type === END) break;
    const dataAt = at + 8;
    if (length > cluster.length - dataAt)
      throw unreadable(
        image,
        `header extension 0x${type.toString(16)} (${length} bytes at ${at}) runs past the first cluster`,
      );
    const data = cluster.subarray(dataAt, dataAt + length);
    if (type === FEATURE_NAME_TABLE) readFeatureNames(data, featureNames);
    else if (type === BITMAPS) bitmaps = readBitmapsExtension(data, image);
    else if (type === EXTERNAL_DATA_FILE) externalDataFile = printable(data.toString('utf8'));
    at = dataAt + Math.ceil(length / 8) * 8;
  }
  return { featureNames, bitmaps, externalDataFile };
}

function readFeatureNames(data: Buffer, names: Map<string, string>): void {
  for (let at = 0; at + FEATURE_NAME_ENTRY <= data.length; at += FEATURE_NAME_ENTRY) {
    const kind = FEATURE_KINDS[data[at]!];
    if (kind === undefined) continue;
    const raw = data.subarray(at + 2, at + FEATURE_NAME_ENTRY).toString('utf8');
    const end = raw.indexOf('\u0000');
    names.set(`${kind}:${data[at + 1]!}`, printable(end === -1 ? raw : raw.slice(0, end)));
  }
}

function readBitmapsExtension(data: Buffer, image: string): BitmapsExtension {
  if (data.length !== 24)
    throw unreadable(image, `the bitmaps header extension is ${data.length} bytes, not 24`);
  if (data.readUInt32BE(4) !== 0)
    throw unreadable(image, 'the reserved field of the bitmaps header extension is not zero');
  return {
    count: data.readUInt32BE(0),
    directorySize: readU64(data, 8),
    directoryOffset: readU64(data, 16),
  };
}

/**
 * Text from the image made safe to put in a message: control characters (a terminal escape in
 * a hostile name) become `?`, and it is cut at 200 characters.
 */
export function printable(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}
