/**
 * croot's architecture, as rules dependency-cruiser checks
 * (core/architecture.test.ts runs them; `npm run arch:check` too), and the
 * options its picture in docs/architecture.md is drawn with
 * (`npm run arch:graph`).
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'No import cycles anywhere in the source.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-sees-hosts-through-tokens',
      comment: 'core/ never imports engines/, native/, pmda/ or bin/: it sees engines and the native module only through tokens.',
      severity: 'error',
      from: { path: '^core/' },
      to: { path: '^(engines|native|pmda|bin)/' },
    },
    {
      name: 'engines-stand-alone',
      comment: 'An engine never imports another engine.',
      severity: 'error',
      from: { path: '^engines/([^/]+)/' },
      to: { path: '^engines/', pathNot: '^engines/$1/' },
    },
    {
      name: 'engines-without-native',
      comment: 'Engines never import native/: they get what it offers through core tokens.',
      severity: 'error',
      from: { path: '^engines/' },
      to: { path: '^native/' },
    },
    {
      name: 'native-on-core-only',
      comment: 'native/ implements core tokens: it imports core/ and itself only.',
      severity: 'error',
      from: { path: '^native/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(engines|pmda|bin|test|bench|battery|examples)/' },
    },
    {
      name: 'pmda-on-core-only',
      comment: 'pmda/ (croot/pmda) is a library over core/: it imports core/ and itself only (its tests also test/support/).',
      severity: 'error',
      from: { path: '^pmda/' },
      to: { path: '^(engines|native|bin|bench|battery|examples)/' },
    },
    {
      name: 'pmda-sources-without-tests',
      comment: "pmda/'s sources never import the test support.",
      severity: 'error',
      from: { path: '^pmda/', pathNot: '\\.test\\.ts$' },
      to: { path: '^test/' },
    },
    {
      name: 'core-sources-without-tests',
      comment: "core/'s sources never import the test support.",
      severity: 'error',
      from: { path: '^core/', pathNot: '\\.test\\.ts$' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|build)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
