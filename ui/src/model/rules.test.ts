import { describe, expect, it } from 'vitest';
import { DEMO_RULES_SERVED } from './fixtures/demo';
import { operatorArity, OPERATORS, parseRuleSetInput, ruleSetSchema } from './rules';

describe('the rule model', () => {
  it('has the 14 operators with their arity', () => {
    expect(OPERATORS).toHaveLength(14);
    expect(OPERATORS.filter((op) => operatorArity(op) === 'list')).toEqual(['in', 'nin']);
    expect(OPERATORS.filter((op) => operatorArity(op) === 'none')).toEqual(['isnull', 'isnotnull']);
  });

  it('accepts the demo rule set and keeps unknown fields', () => {
    const parsed = ruleSetSchema.parse({ company_id: 'demo', rules: DEMO_RULES_SERVED, 'x-source': 'test' });
    expect(parsed.rules).toEqual(DEMO_RULES_SERVED);
    expect(parsed['x-source']).toBe('test');
  });

  it('reads pasted JSON: a rule set, a bare list, or says what is wrong', () => {
    const whole = parseRuleSetInput(JSON.stringify({ company_id: 'acme', rules: DEMO_RULES_SERVED }), 'acme');
    expect(whole.ok && whole.ruleSet.rules.length).toBe(6);
    const bare = parseRuleSetInput(JSON.stringify(DEMO_RULES_SERVED), 'acme');
    expect(bare.ok && bare.ruleSet.company_id).toBe('acme');
    const other = parseRuleSetInput(JSON.stringify({ company_id: 'demo', rules: [] }), 'acme');
    expect(other.ok && other.note).toMatch(/demo/);
    const broken = parseRuleSetInput('{"rules": [{"node_type": "condition"}]}', 'acme');
    expect(broken.ok ? [] : broken.errors).toEqual(expect.arrayContaining([expect.stringMatching(/^rules\[0\]\.node_id/)]));
    const notJson = parseRuleSetInput('{', 'acme');
    expect(notJson.ok ? '' : notJson.errors[0]).toMatch(/not valid JSON/);
    const badOperator = parseRuleSetInput('[{"node_type":"condition","node_id":"a","expect":[{"field":"$context.x","operator":"like","value":[]}]}]', 'acme');
    expect(badOperator.ok ? [] : badOperator.errors).toEqual([expect.stringMatching(/^rules\[0\]\.expect\[0\]\.operator/)]);
  });
});
