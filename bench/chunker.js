// Chunker throughput on seeded random data, using the compiled engine (run `npm run build` first).
// Usage: node bench/chunker.js [MiB]
import { chunkLengths, DEFAULT_CHUNKER_PARAMS, FastCdcChunker } from '../dist/engine/index.js';

const size = Number(process.argv[2] ?? 256) * 1024 * 1024;
const words = new Uint32Array(size / 4);
let state = 0x9e3779b9;
for (let i = 0; i < words.length; i += 1) {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  words[i] = state >>> 0;
}
const data = new Uint8Array(words.buffer);
const small = { minSize: 2048, avgSize: 8192, maxSize: 65536 };
for (const params of [DEFAULT_CHUNKER_PARAMS, small]) {
  const chunker = new FastCdcChunker(params, new Uint8Array(32).fill(7));
  let best = 0;
  for (let round = 0; round < 5; round += 1) {
    const began = performance.now();
    const lengths = chunkLengths(chunker, data);
    const seconds = (performance.now() - began) / 1000;
    if (lengths.reduce((a, b) => a + b, 0) !== data.length)
      throw new Error('lengths do not add up');
    best = Math.max(best, data.length / 1e6 / seconds);
  }
  console.log(
    `chunker avg ${params.avgSize} B: ${best.toFixed(0)} MB/s (best of 5, ${size / 1048576} MiB)`,
  );
}
