// A node:test reporter that writes the run's counts as JSON, so the root test script can add up
// every package's result into one closing line.

interface TestEventData {
  name: string;
  nesting: number;
  file?: string;
  skip?: boolean | string;
  todo?: boolean | string;
  details?: { type?: string; error?: unknown };
}

interface TestEvent {
  type: string;
  data: TestEventData;
}

export interface TestCounts {
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

export default async function* countingReporter(
  source: AsyncIterable<TestEvent>,
): AsyncGenerator<string> {
  const counts: TestCounts = { passed: 0, failed: 0, skipped: 0, failures: [] };
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    const skipped = data.skip !== undefined && data.skip !== false;
    // A suite's tests are counted one by one, except when the whole suite is skipped (its tests
    // never report): then the suite counts as one skipped test, so a skip is never silent.
    if (data.details?.type === 'suite' && !skipped) continue;
    if (skipped) counts.skipped++;
    else if (data.todo !== undefined && data.todo !== false) counts.skipped++;
    else if (event.type === 'test:pass') counts.passed++;
    else {
      counts.failed++;
      counts.failures.push(data.file ? `${data.file}: ${data.name}` : data.name);
    }
  }
  yield JSON.stringify(counts) + '\n';
}
