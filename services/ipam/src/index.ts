// @ciliate/ipam: the IPAM service. Its main (src/main.ts) runs the factory below; the pure
// allocation core is @ciliate/ipam-core and the wire is in @ciliate/contracts, so nothing else
// is exported: other services talk to IPAM over NATS, never by importing it.
export { IPAM_VERSION, ipamService, ipamSettings } from './service/service.js';
