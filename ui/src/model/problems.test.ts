import { describe, expect, it } from 'vitest';
import { locateProblems, problemsAt, problemsByNode } from './problems';

const index = {
  nodeAt: ['a', 'b'],
  edgeAt: [[], ['a:success->b', 'ghost:success->b']],
};

describe('locateProblems', () => {
  it('maps rules[i] to nodes, depends_on[j] to edges, and keeps the field path', () => {
    const located = locateProblems(
      [
        { path: 'rules[0].parameters.product_id', code: 'missing', message: 'requires product_id' },
        { path: 'rules[1].depends_on[1].node_id', code: 'dangling_reference', message: 'no node ghost', hint: 'did you mean `a`?' },
        { path: 'rules[1]', code: 'cycle', message: 'cycle' },
        { path: 'company_id', code: 'invalid_value', message: 'bad id' },
      ],
      index,
    );
    expect(located.map((problem) => [problem.nodeId, problem.edgeId, problem.field])).toEqual([
      ['a', undefined, 'parameters.product_id'],
      ['b', 'ghost:success->b', 'depends_on[1].node_id'],
      ['b', undefined, ''],
      [undefined, undefined, ''],
    ]);
    expect(new Set(located.map((problem) => problem.key)).size).toBe(4);
    const byNode = problemsByNode(located);
    expect(byNode.get('b')?.length).toBe(2);
    expect(byNode.get('')?.length).toBe(1);
  });

  it('finds the problems of one field and below', () => {
    const located = locateProblems(
      [
        { path: 'rules[0].expect[0].value', code: 'arity', message: 'x' },
        { path: 'rules[0].expect[1].field', code: 'invalid_path', message: 'y' },
        { path: 'rules[0].expect[10]', code: 'z', message: 'z' },
      ],
      index,
    );
    expect(problemsAt(located, 'expect[0]').map((problem) => problem.code)).toEqual(['arity']);
    expect(problemsAt(located, 'expect[1].field').map((problem) => problem.code)).toEqual(['invalid_path']);
    expect(problemsAt(located, 'expect').length).toBe(3);
    expect(problemsAt(undefined, 'expect')).toEqual([]);
  });
});
