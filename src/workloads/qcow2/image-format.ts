import { open } from 'node:fs/promises';
import { QCOW2_MAGIC } from './header.js';

/** Disk image formats told apart by their content. */
export type ImageFormat = 'qcow2' | 'raw';

/**
 * Says how the image at `path` is stored: `qcow2` when it starts with the qcow2 magic
 * `QFI\xfb`, else `raw` (any other content is taken as the guest's bytes themselves).
 */
export async function detectImageFormat(path: string): Promise<ImageFormat> {
  const handle = await open(path, 'r');
  try {
    const magic = Buffer.alloc(QCOW2_MAGIC.length);
    const { bytesRead } = await handle.read(magic, 0, magic.length, 0);
    return bytesRead === magic.length && magic.equals(QCOW2_MAGIC) ? 'qcow2' : 'raw';
  } finally {
    await handle.close();
  }
}
