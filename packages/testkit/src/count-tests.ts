// Counting the tests of a file without running it, for the tiers this process may not run
// (root tiers as another user). Running such a file even to list its tests would execute its
// module and suite bodies, which create namespaces and pin maps, so the count is taken from the
// syntax tree instead: every call of `it`/`test` (with .skip/.todo/.only) is one test. A
// declaration inside a loop or an array callback runs an unknown number of times; it counts once
// and is reported, so the number is a lower bound that says so.
import ts from 'typescript';

export interface TestDeclarationCount {
  /** Test declarations (suites are not counted). */
  tests: number;
  /** Of those, declarations inside a loop or an iteration callback, counted once each. */
  inLoops: number;
}

const TEST_FUNCTIONS = new Set(['it', 'test']);
const MODIFIERS = new Set(['skip', 'todo', 'only']);
const ITERATION_METHODS = new Set(['forEach', 'map', 'flatMap']);

function isTestCall(call: ts.CallExpression): boolean {
  const callee = call.expression;
  if (ts.isIdentifier(callee)) return TEST_FUNCTIONS.has(callee.text);
  return (
    ts.isPropertyAccessExpression(callee) &&
    ts.isIdentifier(callee.expression) &&
    TEST_FUNCTIONS.has(callee.expression.text) &&
    MODIFIERS.has(callee.name.text)
  );
}

function isIterationCallback(node: ts.Node): boolean {
  const call = node.parent;
  return (
    (ts.isArrowFunction(node) || ts.isFunctionExpression(node)) &&
    call !== undefined &&
    ts.isCallExpression(call) &&
    call.arguments.includes(node) &&
    ts.isPropertyAccessExpression(call.expression) &&
    ITERATION_METHODS.has(call.expression.name.text)
  );
}

function repeats(node: ts.Node): boolean {
  return (
    ts.isForStatement(node) ||
    ts.isForOfStatement(node) ||
    ts.isForInStatement(node) ||
    ts.isWhileStatement(node) ||
    ts.isDoStatement(node) ||
    isIterationCallback(node)
  );
}

/** Counts the test declarations in JavaScript or TypeScript source text. */
export function countTestDeclarations(source: string, fileName = 'test.js'): TestDeclarationCount {
  const kind = fileName.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS;
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, kind);
  const count: TestDeclarationCount = { tests: 0, inLoops: 0 };
  const visit = (node: ts.Node, inLoop: boolean): void => {
    if (ts.isCallExpression(node) && isTestCall(node)) {
      count.tests++;
      if (inLoop) count.inLoops++;
    }
    const loop = inLoop || repeats(node);
    ts.forEachChild(node, (child) => visit(child, loop));
  };
  visit(file, false);
  return count;
}
