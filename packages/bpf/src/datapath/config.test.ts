import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { datapathConstants, effectiveHostRouting, resolveDatapathConfig } from './config.js';

describe('datapath config', () => {
  it("defaults to native routing, new-flow tracing and Cilium's conntrack timeouts", () => {
    const cfg = resolveDatapathConfig();
    assert.equal(cfg.tunnelMode, 'native');
    assert.deepEqual(cfg.ctTimeouts, { tcpEstablished: 8000, tcpSyn: 60, tcpClose: 10, any: 60 });
    const c = datapathConstants(cfg);
    assert.equal(c.cfg_tunnel_mode, 0);
    // legacy by default: BPF host routing skips netfilter, which kube-proxy needs
    assert.equal(cfg.hostRouting, 'legacy');
    assert.equal(c.cfg_host_routing, 0);
    assert.equal(
      datapathConstants(resolveDatapathConfig({ hostRouting: 'bpf' })).cfg_host_routing,
      1,
    );
    assert.equal(c.cfg_trace_mode, 1);
    assert.equal(c.cfg_ct_tcp_established, 8000);
  });

  it('applies BPF host routing to native routing only; VXLAN mode is legacy', () => {
    const vxlan = resolveDatapathConfig({
      tunnelMode: 'vxlan',
      tunnelIfindex: 7,
      hostRouting: 'bpf',
    });
    assert.equal(vxlan.hostRouting, 'bpf', 'the setting is kept as given');
    assert.equal(effectiveHostRouting(vxlan), 'legacy');
    assert.equal(datapathConstants(vxlan).cfg_host_routing, 0);
    assert.equal(effectiveHostRouting(resolveDatapathConfig({ hostRouting: 'bpf' })), 'bpf');
    assert.equal(effectiveHostRouting(resolveDatapathConfig({ hostRouting: 'legacy' })), 'legacy');
  });

  it('encodes the node address in network byte order', () => {
    const c = datapathConstants(resolveDatapathConfig({ nodeIPv4: '192.0.2.10' }));
    assert.deepEqual(c.cfg_node_ipv4, Buffer.from([192, 0, 2, 10]));
  });

  it('names the setting that is wrong', () => {
    assert.throws(() => resolveDatapathConfig({ tunnelMode: 'vxlan' }), {
      code: 'ERR_INVALID_VALUE',
      message:
        'datapath.tunnelIfindex: Invalid value: 0: required in vxlan mode (the VXLAN device)',
    });
    assert.throws(
      () => resolveDatapathConfig({ ctTimeouts: { tcpSyn: 0 } }),
      /datapath\.ctTimeouts\.tcpSyn: Invalid value: 0/,
    );
    assert.throws(
      () => resolveDatapathConfig({ traceMode: 'loud' as 'all' }),
      /datapath\.traceMode: Invalid value: "loud": must be "off", "new" or "all"/,
    );
    assert.throws(
      () => resolveDatapathConfig({ hostRouting: 'kernel' as 'bpf' }),
      /datapath\.hostRouting: Invalid value: "kernel": must be "bpf" or "legacy"/,
    );
    assert.throws(() => resolveDatapathConfig({ nodeIPv4: '300.1.1.1' }), /datapath\.nodeIPv4/);
  });
});
