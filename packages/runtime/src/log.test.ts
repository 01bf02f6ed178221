import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { duplicateJsonKeys } from '@ciliate/testkit';

import { createLogger } from './log.js';

function capture(): { lines: string[]; write(s: string): void } {
  const lines: string[] = [];
  return { lines, write: (s) => lines.push(...s.split('\n').filter((l) => l !== '')) };
}

describe('service log lines', () => {
  it('carry each key once, and the instance id of the moment, in children made before it changed', () => {
    let id = 'provisional';
    const out = capture();
    const log = createLogger({
      component: 'probe',
      node: 'node-1',
      instanceId: () => id,
      level: 'info',
      destination: out,
    });
    const early = log.child({ subsys: 'lifecycle' });
    early.info({ event: 'a' }, 'before');
    id = 'registered';
    early.info({ event: 'b' }, 'after');
    log.child({ subsys: 'rpc' }).child({ peer: 'x' }).info({ event: 'c' }, 'late child');
    log.info({ event: 'd' }, 'root');

    assert.equal(out.lines.length, 4);
    for (const line of out.lines) {
      assert.deepEqual(duplicateJsonKeys(line), [], `a key repeated in ${line}`);
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.equal(o.component, 'probe');
      assert.equal(o.node, 'node-1');
    }
    assert.deepEqual(
      out.lines.map((l) => (JSON.parse(l) as { instance: string }).instance),
      ['provisional', 'registered', 'registered', 'registered'],
    );
  });
});
