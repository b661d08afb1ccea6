// Repeated runs of one data set merged into one result (--repeat).

/**
 * Merges repeated runs of one data set. Times: the fastest run (load from other work on the machine
 * only ever adds time), with the slowest kept for the table; vault size: median; RSS: max.
 * Any failure wins.
 */
export function aggregate(runs) {
  if (runs.length === 1) return runs[0];
  const median = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  };
  const merge = (steps) => {
    const bad = steps.find((r) => !r?.ok);
    if (bad) return bad;
    const m = { ...steps[steps.length - 1] };
    m.runs = steps.map((r) => r.seconds);
    m.seconds = Math.min(...m.runs);
    m.maxSeconds = Math.max(...m.runs);
    m.cpu = Math.min(...steps.map((r) => r.cpu));
    m.rssKiB = Math.max(...steps.map((r) => r.rssKiB));
    if (steps.every((r) => r.vaultBytes != null))
      m.vaultBytes = median(steps.map((r) => r.vaultBytes));
    const badCheck = steps.find((r) => r.check && !r.check.ok);
    if (badCheck) m.check = badCheck.check;
    return m;
  };
  const out = { ...runs[runs.length - 1], tools: {}, repeats: runs.length };
  for (const tool of Object.keys(runs[0].tools)) {
    out.tools[tool] = {};
    for (const name of Object.keys(runs[0].tools[tool])) {
      out.tools[tool][name] = merge(runs.map((r) => r.tools[tool][name]));
    }
  }
  out.baseline = {
    c: merge(runs.map((r) => r.baseline.c)),
    x: merge(runs.map((r) => r.baseline.x)),
    check: runs.map((r) => r.baseline.check).find((c) => c && !c.ok) ?? runs[0].baseline.check,
    tarBytes: runs[0].baseline.tarBytes,
  };
  return out;
}
