/**
 * One spec per node kind (condition, task): its icon, default data,
 * renderer on the canvas and settings panel. The canvas, palette and side
 * panel only go through these specs.
 */
import type { ComponentType } from 'react';
import type { NodeProps } from '@xyflow/react';
import type { FlowNode, FlowNodeType } from '../../model/convert';
import type { TaskSpec } from '../../model/catalogue';
import type { PathSuggestion } from '../../model/paths';
import type { LocatedProblem } from '../../model/problems';
import type { RuleBody } from '../../model/rules';

export interface NodePanelProps<R extends RuleBody = RuleBody> {
  nodeId: string;
  rule: R;
  /** Changes the node's rule; edits with the same key coalesce into one undo step. */
  onChange: (update: (rule: R) => R, key: string) => void;
  problems: readonly LocatedProblem[];
  suggestions: readonly PathSuggestion[];
  tasks: ReadonlyMap<string, TaskSpec>;
  readOnly: boolean;
}

export interface NodeSpec<R extends RuleBody = RuleBody> {
  kind: FlowNodeType;
  /** "Condition", or the task's title. */
  label: (rule: R, tasks: ReadonlyMap<string, TaskSpec>) => string;
  Icon: ComponentType<{ size?: number; rule?: R }>;
  /** The rule of a new node (a task's name for tasks). */
  defaultRule: (taskName?: string) => R;
  /** The id a new node gets, before making it unique. */
  defaultId: (taskName?: string) => string;
  Renderer: ComponentType<NodeProps<FlowNode>>;
  Panel: ComponentType<NodePanelProps<R>>;
}
