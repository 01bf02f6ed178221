import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { parseStoreKey, storeKey } from './objects.js';
import { lookupKind, resolveResource, supportedKinds, unsupportedKinds } from './registry.js';

describe('registry', () => {
  it('resolves the names kubectl and Cilium users type', () => {
    const table: [string, string][] = [
      ['po', 'Pod'],
      ['pods', 'Pod'],
      ['svc', 'Service'],
      ['ns', 'Namespace'],
      ['no', 'Node'],
      ['netpol', 'NetworkPolicy'],
      ['endpointslices', 'EndpointSlice'],
      ['cnp', 'CiliumNetworkPolicy'],
      ['ciliumnp', 'CiliumNetworkPolicy'],
      ['ciliumnetworkpolicies', 'CiliumNetworkPolicy'],
      ['CiliumNetworkPolicy', 'CiliumNetworkPolicy'],
      ['ccnp', 'CiliumClusterwideNetworkPolicy'],
      ['ippools', 'CiliumLoadBalancerIPPool'],
      ['ippool', 'CiliumLoadBalancerIPPool'],
      ['lbippool', 'CiliumLoadBalancerIPPool'],
      ['lbippools', 'CiliumLoadBalancerIPPool'],
      ['l2announcement', 'CiliumL2AnnouncementPolicy'],
      ['cbgpcluster', 'CiliumBGPClusterConfig'],
      ['cbgppeer', 'CiliumBGPPeerConfig'],
      ['cbgpadvert', 'CiliumBGPAdvertisement'],
      ['cn', 'CiliumNode'],
      ['ciliumn', 'CiliumNode'],
      ['ciliumid', 'CiliumIdentity'],
      ['cep', 'CiliumEndpoint'],
      ['ciliumep', 'CiliumEndpoint'],
      ['ciliumnetworkpolicies.cilium.io', 'CiliumNetworkPolicy'],
      ['cnp.cilium.io', 'CiliumNetworkPolicy'],
      ['networkpolicies.networking.k8s.io', 'NetworkPolicy'],
    ];
    for (const [name, kind] of table) {
      const k = resolveResource(name);
      assert.equal(k?.kind, kind, name);
      assert.equal(k?.supported, true, name);
    }
  });

  it('knows the kinds it refuses, so they are "not supported" rather than unknown', () => {
    const refused: [string, string][] = [
      ['cec', 'CiliumEnvoyConfig'],
      ['ccec', 'CiliumClusterwideEnvoyConfig'],
      ['ep', 'Endpoints'],
    ];
    for (const [name, kind] of refused) {
      const k = resolveResource(name);
      assert.equal(k?.kind, kind);
      assert.equal(k?.supported, false);
    }
    assert.equal(resolveResource('deployments'), undefined);
    assert.equal(resolveResource('cnp.example.com'), undefined);
  });

  it('has no name that means two kinds', () => {
    const seen = new Map<string, string>();
    for (const k of [...supportedKinds(), ...unsupportedKinds()]) {
      for (const n of new Set([k.plural, k.singular, k.kind.toLowerCase(), ...k.shortNames])) {
        assert.ok(
          !seen.has(n) || seen.get(n) === k.kind,
          `${n} names both ${seen.get(n)} and ${k.kind}`,
        );
        seen.set(n, k.kind);
      }
    }
  });

  it('serves every version Cilium serves, with exactly one storage version each', () => {
    const versions = Object.fromEntries(
      supportedKinds().map((k) => [
        k.kind,
        k.versions.map((v) => `${v.name}${v.storage ? '*' : ''}`).join(','),
      ]),
    );
    assert.deepEqual(versions, {
      Pod: 'v1*',
      Namespace: 'v1*',
      Node: 'v1*',
      Service: 'v1*',
      EndpointSlice: 'v1*',
      NetworkPolicy: 'v1*',
      CiliumNetworkPolicy: 'v2*',
      CiliumClusterwideNetworkPolicy: 'v2*',
      CiliumLoadBalancerIPPool: 'v2*,v2alpha1',
      CiliumL2AnnouncementPolicy: 'v2alpha1*',
      CiliumBGPClusterConfig: 'v2*,v2alpha1',
      CiliumBGPPeerConfig: 'v2*,v2alpha1',
      CiliumBGPAdvertisement: 'v2*,v2alpha1',
      CiliumNode: 'v2*',
      CiliumIdentity: 'v2*',
      CiliumEndpoint: 'v2*',
    });
    for (const k of supportedKinds())
      assert.equal(k.versions.filter((v) => v.storage)[0]?.name, k.storageVersion);
  });

  it('looks kinds up by apiVersion and kind', () => {
    assert.equal(lookupKind('cilium.io/v2alpha1', 'CiliumLoadBalancerIPPool').status, 'supported');
    assert.equal(
      lookupKind('cilium.io/v2', 'CiliumL2AnnouncementPolicy').status,
      'version-not-served',
    );
    assert.equal(lookupKind('v1', 'CiliumNode').status, 'version-not-served');
    assert.equal(lookupKind('cilium.io/v2', 'CiliumEnvoyConfig').status, 'unsupported');
    assert.equal(lookupKind('example.com/v1', 'Widget').status, 'unknown');
  });

  it('store keys are Kind/namespace/name and parse back', () => {
    assert.equal(
      storeKey({ kind: 'Service', namespace: 'media', name: 'plex' }),
      'Service/media/plex',
    );
    assert.equal(storeKey({ kind: 'CiliumNode', namespace: '', name: 'n1' }), 'CiliumNode//n1');
    const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?$/);
    fc.assert(
      fc.property(
        fc.constantFrom(...supportedKinds().map((k) => k.kind)),
        fc.oneof(fc.constant(''), name),
        name,
        (kind, namespace, n) => {
          const ref = { kind, namespace, name: n };
          assert.deepEqual(parseStoreKey(storeKey(ref)), ref);
        },
      ),
    );
    assert.equal(parseStoreKey('Service/a'), undefined);
  });
});
