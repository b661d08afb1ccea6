/** The logical blocks a file can have: block numbers within a file are 32 bits. */
export const MAX_LOGICAL_BLOCKS = 2 ** 32;

/**
 * A stretch of a file's logical blocks: stored in consecutive disk blocks, or reading as zeros
 * (a hole, or an extent allocated but not yet written).
 */
export type BlockRun =
  | {
      readonly kind: 'data';
      readonly logical: number;
      readonly length: number;
      readonly physical: number;
    }
  | { readonly kind: 'zeros'; readonly logical: number; readonly length: number };

/** How a file's logical blocks map to disk blocks: an extent tree or a map of block pointers. */
export interface BlockMap {
  /**
   * The run that starts at `logical` (< {@link MAX_LOGICAL_BLOCKS}): it MUST have a length of at
   * least one block and MUST NOT reach past {@link MAX_LOGICAL_BLOCKS}. Damage found on the way
   * is SOURCE_UNREADABLE.
   */
  run(logical: number): Promise<BlockRun>;
}
