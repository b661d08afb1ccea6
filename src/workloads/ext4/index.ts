/** ext4: a read-only reader of ext2, ext3 and ext4 file systems, for file-level recovery. */
export { openExt4, Ext4Volume, MAX_READ_LENGTH as EXT4_MAX_READ_LENGTH } from './ext4-volume.js';
export type { Ext4Entry } from './entry.js';
export { EXT4_FILE_TYPES, type Ext4FileType, type Inode as Ext4Inode } from './inode.js';
export type { ContentPiece as Ext4ContentPiece } from './file-content.js';
export type { DirectoryRecord as Ext4DirectoryRecord } from './directory.js';
export { displayName as ext4DisplayName, type Ext4Target } from './paths.js';
export {
  extractFromExt4,
  type Ext4ExtractOptions,
  type Ext4ExtractResult,
  type Ext4ExtractWarning,
} from './extract.js';
