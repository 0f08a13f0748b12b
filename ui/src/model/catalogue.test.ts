import { describe, expect, it } from 'vitest';
import { acceptsExtraParameters, baseNodeId, outputFields, parameterSpecs, parameterText, parseParameterText, taskGroup, uniqueId, type TaskSpec } from './catalogue';

const contextPath = { type: 'string', pattern: '^\\$context.' };
const shipment: TaskSpec = {
  name: 'payment.tasks.generate_shipment',
  title: 'Generate shipment',
  description: 'Creates a shipment with its packing slip.',
  parameters_schema: {
    type: ['object', 'null'],
    properties: {
      product_id: { anyOf: [{ type: ['string', 'integer'], minLength: 1, description: 'The product shipped.' }, { $ref: '#/$defs/context_path' }], description: 'The product shipped.' },
      quantity: { anyOf: [{ type: 'integer', minimum: 1 }, { $ref: '#/$defs/context_path' }], description: 'How many; default 1.' },
      address: { anyOf: [{ description: 'Where to ship.' }, { $ref: '#/$defs/context_path' }], description: 'Where to ship.' },
      method: { anyOf: [{ type: 'string', enum: ['GET', 'POST'] }, { $ref: '#/$defs/context_path' }] },
      rate: { anyOf: [{ type: ['number', 'string'], format: 'decimal', minimum: 0, maximum: 1 }, { $ref: '#/$defs/context_path' }] },
    },
    required: ['product_id'],
    additionalProperties: false,
    $defs: { context_path: contextPath },
  },
  output: { type: 'object', properties: { shipment_id: { description: 'Id of the shipment.' } } },
};

describe('the task catalogue', () => {
  it('reads each parameter from its JSON Schema: required, description, kind and hint', () => {
    const specs = parameterSpecs(shipment);
    expect(specs.map((spec) => [spec.name, spec.required, spec.kind, spec.hint])).toEqual([
      ['product_id', true, 'string', 'text or integer'],
      ['quantity', false, 'integer', 'integer ≥ 1'],
      ['address', false, 'json', 'text, or JSON'],
      ['method', false, 'string', 'one of GET, POST'],
      ['rate', false, 'decimal', 'decimal 0–1'],
    ]);
    expect(specs[0]?.description).toBe('The product shipped.');
    expect(specs[3]?.enumValues).toEqual(['GET', 'POST']);
    expect(acceptsExtraParameters(shipment)).toBe(false);
    expect(outputFields(shipment)).toEqual([{ name: 'shipment_id', description: 'Id of the shipment.' }]);
  });

  it('turns typed text into JSON values, and back', () => {
    expect(parseParameterText('', 'string')).toBeUndefined();
    expect(parseParameterText('$context.event.qty', 'integer')).toBe('$context.event.qty');
    expect(parseParameterText('3', 'integer')).toBe(3);
    expect(parseParameterText('three', 'integer')).toBe('three');
    expect(parseParameterText('0.10', 'decimal')).toBe('0.10');
    expect(parseParameterText('{"a": 1}', 'json')).toEqual({ a: 1 });
    expect(parseParameterText('["x"]', 'json')).toEqual(['x']);
    expect(parseParameterText('12 Main St', 'json')).toBe('12 Main St');
    expect(parameterText({ a: 1 })).toBe('{"a":1}');
    expect(parameterText('x')).toBe('x');
    expect(parameterText(undefined)).toBe('');
  });

  it('groups tasks for the palette and suggests node ids', () => {
    expect(taskGroup('payment.tasks.duplicate_shipment')).toBe('Shipping');
    expect(taskGroup('payment.tasks.generate_royalty')).toBe('Billing & payouts');
    expect(taskGroup('payment.tasks.grant_digital_access')).toBe('Subscriptions & access');
    expect(taskGroup('payment.tasks.http_request')).toBe('Messages & integrations');
    expect(taskGroup('payment.tasks.abort_flow')).toBe('Flow control');
    expect(taskGroup('acme.billing.sync')).toBe('acme.billing');
    expect(baseNodeId('payment.tasks.generate_shipment')).toBe('generate-shipment');
    expect(uniqueId('notify', new Set(['notify', 'notify-2']))).toBe('notify-3');
    expect(uniqueId('notify', new Set())).toBe('notify');
  });
});
