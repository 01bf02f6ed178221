import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { rbacResource, rbacVerb } from './client.js';

describe('RBAC names of requests', () => {
  it('names verb and resource the way RBAC rules do', () => {
    const rows: [string, string, string, string][] = [
      ['GET', '/api/v1/pods?limit=500', 'list', 'pods'],
      ['GET', '/api/v1/pods?watch=1&resourceVersion=5', 'watch', 'pods'],
      ['GET', '/api/v1/namespaces?limit=500', 'list', 'namespaces'],
      ['GET', '/api/v1/namespaces/app', 'get', 'namespaces'],
      ['PATCH', '/api/v1/namespaces/app/services/web/status', 'patch', 'services/status'],
      ['GET', '/apis/cilium.io/v2/ciliumnodes?limit=500', 'list', 'ciliumnodes.cilium.io'],
      ['POST', '/apis/cilium.io/v2/ciliumnodes', 'create', 'ciliumnodes.cilium.io'],
      ['PUT', '/apis/cilium.io/v2/ciliumnodes/w1', 'update', 'ciliumnodes.cilium.io'],
      [
        'PATCH',
        '/apis/cilium.io/v2/ciliumnodes/w1/status',
        'patch',
        'ciliumnodes.cilium.io/status',
      ],
      [
        'DELETE',
        '/apis/cilium.io/v2/namespaces/app/ciliumendpoints/p',
        'delete',
        'ciliumendpoints.cilium.io',
      ],
      [
        'POST',
        '/apis/cilium.io/v2/namespaces/app/ciliumendpoints',
        'create',
        'ciliumendpoints.cilium.io',
      ],
      [
        'GET',
        '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x',
        'get',
        'leases.coordination.k8s.io',
      ],
      [
        'PUT',
        '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x',
        'update',
        'leases.coordination.k8s.io',
      ],
      [
        'POST',
        '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases',
        'create',
        'leases.coordination.k8s.io',
      ],
      [
        'GET',
        '/apis/discovery.k8s.io/v1/endpointslices?watch=1',
        'watch',
        'endpointslices.discovery.k8s.io',
      ],
    ];
    for (const [method, path, verb, resource] of rows) {
      assert.equal(rbacVerb(method, path), verb, `${method} ${path}`);
      assert.equal(rbacResource(path), resource, path);
    }
  });
});
