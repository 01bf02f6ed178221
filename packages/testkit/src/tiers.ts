// Test tiers are told apart by file name, so a reader knows from `ls` what a file needs.
//   foo.test.ts       unit: pure code, needs nothing
//   foo.int.test.ts   integration: real nats-server
//   foo.k8s.test.ts   kubernetes: real kube-apiserver and etcd
//   foo.priv.test.ts  privileged: root, eBPF, network namespaces
//   foo.packet.test.ts packet: root, BPF programs run on crafted packets (BPF_PROG_TEST_RUN)
//   foo.lab.test.ts   lab: multi-node labs of network namespaces with real traffic

export const TIERS = ['unit', 'integration', 'kubernetes', 'privileged', 'packet', 'lab'] as const;
export type Tier = (typeof TIERS)[number];

const SUFFIX: Record<Exclude<Tier, 'unit'>, string> = {
  integration: '.int.test.js',
  kubernetes: '.k8s.test.js',
  privileged: '.priv.test.js',
  packet: '.packet.test.js',
  lab: '.lab.test.js',
};

export function tierOf(file: string): Tier | undefined {
  if (!file.endsWith('.test.js')) return undefined;
  for (const [tier, suffix] of Object.entries(SUFFIX)) {
    if (file.endsWith(suffix)) return tier as Tier;
  }
  return 'unit';
}

export function needsRoot(tier: Tier): boolean {
  return tier === 'privileged' || tier === 'packet' || tier === 'lab';
}

export function parseTiers(spec: string | undefined): Tier[] {
  if (spec === undefined || spec.trim() === '' || spec === 'all') return [...TIERS];
  const tiers = spec.split(',').map((s) => s.trim());
  for (const t of tiers) {
    if (!(TIERS as readonly string[]).includes(t)) {
      throw new Error(`unknown test tier "${t}" (known: ${TIERS.join(', ')})`);
    }
  }
  return tiers as Tier[];
}
