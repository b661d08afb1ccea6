// Enforces the layers of DESIGN.md §3: a layer may import the layers below it, never above.
// Order, bottom up: core, backends, engine, workloads, catalog, jobs, app, server, cli.
// The CLI sits above the server because it hosts the `holdfast server` command.
const LAYERS = [
  'core',
  'backends',
  'engine',
  'workloads',
  'catalog',
  'jobs',
  'app',
  'server',
  'cli',
];

function above(layer) {
  const index = LAYERS.indexOf(layer);
  return LAYERS.filter((_, i) => i > index);
}

const layerRules = LAYERS.map((layer) => ({
  name: `layer-${layer}`,
  comment: `src/${layer} may not import layers above it (DESIGN.md §3)`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(${above(layer).join('|')})/` },
})).filter((rule) => !rule.to.path.endsWith('()/'));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'public-face-only',
      comment:
        'Other folders import a layer through its index.ts, not its insides (STYLE.md Layout)',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      // Test kits are shared by tests of other folders; product code may not import them at all.
      // app/direct.ts is app without the control plane, so that the CLI's direct commands and
      // server clients load no catalog, scheduler or their dependencies.
      to: {
        path: '^src/([^/]+)/.+',
        pathNot: [
          '^src/$1/',
          '^src/[^/]+/index\\.ts$',
          '^src/app/direct\\.ts$',
          '\\.testkit\\.ts$',
        ],
      },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-test-code-in-product',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.(test|testkit)\\.ts$' },
      to: { path: '\\.(test|testkit)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: 'node_modules' },
  },
};
