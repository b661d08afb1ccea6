import { appendPiece, type ContentPiece } from '../engine/index.js';

/**
 * The pieces of `content` that cover `[from, to)`, where both are block boundaries of an
 * image's content (no chunk crosses them; holes may and are split). `sizes` gives each
 * chunk's length. Returns undefined when a chunk does cross a boundary (content not cut in
 * image blocks): the caller then reads the range instead.
 */
export function sliceContent(
  content: readonly ContentPiece[],
  sizeOf: (id: string) => number | undefined,
  from: number,
  to: number,
): ContentPiece[] | undefined {
  const out: ContentPiece[] = [];
  let offset = 0;
  for (const piece of content) {
    if (offset >= to) break;
    const length = typeof piece === 'number' ? piece : sizeOf(piece);
    if (length === undefined) return undefined;
    const end = offset + length;
    if (end > from) {
      if (typeof piece === 'number') {
        appendPiece(out, Math.min(end, to) - Math.max(offset, from));
      } else {
        if (offset < from || end > to) return undefined;
        out.push(piece);
      }
    }
    offset = end;
  }
  return offset >= to ? out : undefined;
}
