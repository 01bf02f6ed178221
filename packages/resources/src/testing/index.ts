// @ciliate/resources/testing: fixtures for other packages' tests (the CLI and the kube-bridge
// apply the same seed manifests and examples). Not part of the runtime API.

export { EXAMPLES } from './examples.js';
export { openApiErrors } from './openapi.js';
export { seedManifests, fixturesDir, type SeedManifest } from './shared.js';
