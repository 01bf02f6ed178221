// @ciliate/identity: the identity service. Its main (src/main.ts) runs the factory below; the
// pure core is @ciliate/identity-core and the wire is in @ciliate/contracts, so nothing else is
// exported: other services talk to the identity service over NATS, never by importing it.
export { IDENTITY_VERSION, identityService, identitySettings } from './service/service.js';
