// @ciliate/resources: the Kubernetes and cilium.io objects Ciliate handles, validated the way
// kube-apiserver validates them, and label selectors with Cilium's label sources.

export {
  ManifestError,
  ManifestErrorCode,
  formatFieldIssue,
  type FieldErrorType,
  type FieldIssue,
  type ManifestProblem,
} from './errors.js';
export {
  loadManifests,
  parseManifests,
  toJson,
  toYaml,
  validateObject,
  type FieldValidation,
  type ManifestLocation,
  type ParseOptions,
  type ParseResult,
  type ValidateResult,
} from './manifest.js';
export {
  apiVersionOf,
  kindDescriptor,
  lookupKind,
  resolveResource,
  splitApiVersion,
  storageApiVersion,
  supportedKinds,
  unsupportedKinds,
  type KindDescriptor,
  type KindLookup,
  type KnownKind,
  type PrinterColumn,
  type UnsupportedKindDescriptor,
  type VersionDescriptor,
} from './registry.js';
export {
  objectRef,
  parseStoreKey,
  storeKey,
  toStorageVersion,
  type KubeObject,
  type ObjectRef,
  type ResourceKind,
  type ResourceObject,
} from './objects.js';
// Labels and selector matching are the vocabulary's (@ciliate/contracts); the resource side adds
// the Kubernetes syntax checks of a selector.
export { validateSelector } from './selector.js';
export { parseCidr, parseIp } from './validation.js';
export {
  CRD_GENERATE_COMMAND,
  crdFor,
  generateCrds,
  openApiSchemaFor,
  type CustomResourceDefinition,
  type GeneratedCrd,
} from './crd/generate.js';
export { structuralViolations, type OpenApiSchema } from './crd/structural.js';
export type { ObjectMeta } from './schema/kit.js';
export type { Namespace, Node, Pod, Service } from './schema/core.js';
export type { EndpointSlice } from './schema/discovery.js';
export type { NetworkPolicy } from './schema/networking.js';
export type {
  CiliumClusterwideNetworkPolicy,
  CiliumNetworkPolicy,
  PolicyRule,
} from './schema/policy.js';
export type { CiliumL2AnnouncementPolicy, CiliumLoadBalancerIPPool } from './schema/lb.js';
export type {
  CiliumBGPAdvertisement,
  CiliumBGPClusterConfig,
  CiliumBGPPeerConfig,
} from './schema/bgp.js';
export type { CiliumEndpoint, CiliumIdentity, CiliumNode } from './schema/cilium.js';
