/** The node kinds, and React Flow's `nodeTypes` (at module scope, so it never changes identity). */
import type { NodeTypes } from '@xyflow/react';
import type { FlowNodeType } from '../../model/convert';
import type { RuleBody } from '../../model/rules';
import { conditionSpec } from './condition';
import type { NodeSpec } from './spec';
import { taskSpec } from './task';

export const NODE_SPECS: Record<FlowNodeType, NodeSpec> = {
  condition: conditionSpec as unknown as NodeSpec,
  task: taskSpec as unknown as NodeSpec,
};

export const nodeTypes: NodeTypes = {
  condition: conditionSpec.Renderer,
  task: taskSpec.Renderer,
};

export function specFor(rule: RuleBody): NodeSpec {
  return NODE_SPECS[rule.node_type];
}
