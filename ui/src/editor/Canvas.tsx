/** The React Flow canvas: nodes, dependency edges, drop target for the palette, minimap and controls. */
import { useCallback, useMemo, useState, type DragEvent } from 'react';
import {
  Background,
  BackgroundVariant,
  Controls,
  MiniMap,
  ReactFlow,
  type Connection,
  type EdgeChange,
  type IsValidConnection,
  type NodeChange,
  type OnConnectEnd,
  type XYPosition,
  useReactFlow,
} from '@xyflow/react';
import type { FlowEdge, FlowNode } from '../model/convert';
import { NODE_HEIGHT, NODE_WIDTH } from '../model/layout';
import { isRetrying, type NodeState } from '../model/runs';
import { useCanvasContext } from './context';
import { ConnectionLine, edgeTypes } from './edges';
import { nodeTypes } from './nodes';
import { DRAG_TYPE, readDraggedItem, type PaletteItem } from './Palette';

/** Fit the flow to the view with a margin, never zooming in past 100%. */
export const FIT_VIEW_OPTIONS = { padding: { top: '40px', bottom: '40px', left: '48px', right: '48px' }, maxZoom: 1 } as const;
const SNAP_GRID: [number, number] = [8, 8];
const DELETE_KEYS = ['Delete', 'Backspace'];
const PRO_OPTIONS = { hideAttribution: true };
const MINIMAP_STYLE = { width: 144, height: 96 };
const EDIT_LABELS = { 'node.a11yDescription.default': 'Press Enter or Space to select, Delete to remove, arrow keys to move.' };
const READ_ONLY_LABELS = { 'node.a11yDescription.default': 'Press Enter or Space to select and see its details.' };

function kindColor(node: FlowNode): string {
  return node.type === 'condition' ? 'var(--condition)' : 'var(--task)';
}

const STATE_COLORS: Record<NodeState, string> = {
  success: 'var(--success-strong)',
  failure: 'var(--danger-strong)',
  skipped: '#cbd5e1',
  running: 'var(--primary)',
  pending: '#94a3b8',
};

export function Canvas({
  nodes,
  edges,
  onNodesChange,
  onEdgesChange,
  onConnect,
  isValidConnection,
  onDropItem,
  onConnectEnd,
  readOnly,
  children,
}: {
  nodes: FlowNode[];
  edges: FlowEdge[];
  onNodesChange: (changes: NodeChange<FlowNode>[]) => void;
  onEdgesChange: (changes: EdgeChange<FlowEdge>[]) => void;
  onConnect: (connection: Connection) => void;
  isValidConnection: IsValidConnection<FlowEdge>;
  onDropItem: (item: PaletteItem, position: XYPosition) => void;
  onConnectEnd?: OnConnectEnd;
  readOnly: boolean;
  children?: React.ReactNode;
}) {
  const { screenToFlowPosition } = useReactFlow();
  const { results } = useCanvasContext();
  const minimapColor = useMemo(
    () =>
      results
        ? (node: FlowNode) => {
            const result = results.get(node.id);
            return isRetrying(result) ? STATE_COLORS.running : STATE_COLORS[result?.state ?? 'pending'];
          }
        : kindColor,
    [results],
  );
  // Fit the view to the flow it opens with; an empty canvas keeps its viewport
  // (React Flow would otherwise jump to the first node dropped on it).
  const [fitOnInit] = useState(nodes.length > 0);

  const onDragOver = useCallback(
    (event: DragEvent) => {
      if (readOnly || !event.dataTransfer.types.includes(DRAG_TYPE)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
    },
    [readOnly],
  );

  const onDrop = useCallback(
    (event: DragEvent) => {
      if (readOnly) return;
      const item = readDraggedItem(event.dataTransfer);
      if (!item) return;
      event.preventDefault();
      const point = screenToFlowPosition({ x: event.clientX, y: event.clientY });
      onDropItem(item, { x: Math.round((point.x - NODE_WIDTH / 2) / 8) * 8, y: Math.round((point.y - NODE_HEIGHT / 2) / 8) * 8 });
    },
    [onDropItem, readOnly, screenToFlowPosition],
  );

  return (
    <div className="canvas" onDragOver={onDragOver} onDrop={onDrop} data-testid="canvas">
      <ReactFlow<FlowNode, FlowEdge>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        onConnectEnd={onConnectEnd}
        isValidConnection={isValidConnection}
        connectionLineComponent={ConnectionLine}
        connectionRadius={28}
        fitView={fitOnInit}
        fitViewOptions={FIT_VIEW_OPTIONS}
        minZoom={0.2}
        maxZoom={1.75}
        snapToGrid
        snapGrid={SNAP_GRID}
        deleteKeyCode={readOnly ? null : DELETE_KEYS}
        nodesDraggable={!readOnly}
        nodesConnectable={!readOnly}
        edgesFocusable
        nodesFocusable
        proOptions={PRO_OPTIONS}
        ariaLabelConfig={readOnly ? READ_ONLY_LABELS : EDIT_LABELS}
      >
        <Background variant={BackgroundVariant.Dots} gap={16} size={1.2} color="var(--canvas-dot)" />
        {nodes.length > 0 ? (
          <MiniMap<FlowNode> position="top-right" pannable zoomable nodeColor={minimapColor} nodeBorderRadius={6} maskColor="rgba(15, 23, 42, 0.06)" ariaLabel="Minimap" style={MINIMAP_STYLE} />
        ) : null}
        <Controls showInteractive={false} fitViewOptions={FIT_VIEW_OPTIONS} aria-label="Zoom controls" />
        {children}
      </ReactFlow>
    </div>
  );
}
