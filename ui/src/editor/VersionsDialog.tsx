/**
 * Version history: every saved version (open one read-only), and the
 * difference between any two of them, or between a version and the draft,
 * computed here from their JSON.
 */
import { useEffect, useMemo, useState } from 'react';
import { errorMessage, type MoneyFlowClient } from '../api/client';
import type { VersionSummary } from '../api/types';
import { IconEye } from '../components/icons';
import { Badge, Button, Callout, Dialog, EmptyState, formatDate, Spinner } from '../components/ui';
import { diffRuleSets, isEmptyDiff, type FieldChange, type RuleSetDiff } from '../model/diff';
import { ruleNodeSchema, type RuleNode } from '../model/rules';
import { z } from 'zod';

const DRAFT = 'draft';

export function parseVersionRules(rules: unknown[]): RuleNode[] {
  return z.array(ruleNodeSchema).parse(rules);
}

export function VersionsDialog({
  open,
  onClose,
  client,
  companyId,
  versions,
  loading,
  error,
  draft,
  currentVersion,
  onOpenVersion,
}: {
  open: boolean;
  onClose: () => void;
  client: MoneyFlowClient;
  companyId: string;
  versions: readonly VersionSummary[];
  loading: boolean;
  error: string | null;
  draft: readonly RuleNode[];
  currentVersion: number | null;
  onOpenVersion: (version: number) => void;
}) {
  const newest = versions[0]?.version;
  const [from, setFrom] = useState<string>('');
  const [to, setTo] = useState<string>(DRAFT);
  const [cache, setCache] = useState<Map<number, RuleNode[]>>(new Map());
  const [loadError, setLoadError] = useState<string | null>(null);

  const fromValue = from || (versions[1] ? String(versions[1].version) : newest !== undefined ? String(newest) : '');

  useEffect(() => {
    if (!open) return;
    const wanted = [fromValue, to].filter((value) => value !== DRAFT && value !== '').map(Number);
    const missing = wanted.filter((version) => !cache.has(version));
    if (missing.length === 0) return;
    const controller = new AbortController();
    Promise.all(missing.map((version) => client.getVersion(companyId, version, controller.signal).then((body) => [version, parseVersionRules(body.rules)] as const))).then(
      (loaded) =>
        setCache((old) => {
          const next = new Map(old);
          for (const [version, rules] of loaded) next.set(version, rules);
          return next;
        }),
      (reason: unknown) => {
        if (!controller.signal.aborted) setLoadError(errorMessage(reason));
      },
    );
    return () => controller.abort();
  }, [open, fromValue, to, cache, client, companyId]);

  const rulesOf = (value: string): readonly RuleNode[] | undefined => (value === DRAFT ? draft : cache.get(Number(value)));
  const before = rulesOf(fromValue);
  const after = rulesOf(to);
  const diff = useMemo(() => (before && after ? diffRuleSets(before, after) : null), [before, after]);
  const label = (value: string) => (value === DRAFT ? 'the draft' : `version ${value}`);

  return (
    <Dialog open={open} onClose={onClose} title="Version history" size="xl" description="Every save is a new, immutable version; the newest is the one payments run on.">
      {loading ? (
        <div className="centered">
          <Spinner label="Loading versions" />
        </div>
      ) : error ? (
        <Callout tone="danger" title="Could not load the versions">
          {error}
        </Callout>
      ) : versions.length === 0 ? (
        <EmptyState title="No version yet">Save the flow to create version 1. Every later save adds a version you can open and compare here.</EmptyState>
      ) : (
        <div className="versions-layout">
          <ol className="version-list" aria-label="Versions">
            {versions.map((version) => (
              <li key={version.version} className={version.version === currentVersion ? 'is-current' : undefined}>
                <div className="version-meta">
                  <span className="version-number">Version {version.version}</span>
                  {version.version === newest ? <Badge tone="success">live</Badge> : null}
                  {version.version === currentVersion && version.version !== newest ? <Badge tone="primary">draft base</Badge> : null}
                </div>
                <span className="version-detail">
                  {formatDate(version.created_at)} · {version.node_count} node{version.node_count === 1 ? '' : 's'}
                </span>
                <Button size="sm" variant="ghost" icon={<IconEye size={14} />} aria-label={`Open version ${version.version} read-only`} onClick={() => onOpenVersion(version.version)}>
                  Open
                </Button>
              </li>
            ))}
          </ol>
          <section className="diff-pane" aria-label="Compare versions">
            <div className="diff-controls">
              <label>
                <span>Compare</span>
                <select className="input" aria-label="Compare from" value={fromValue} onChange={(event) => setFrom(event.target.value)}>
                  {versions.map((version) => (
                    <option key={version.version} value={String(version.version)}>
                      Version {version.version}
                    </option>
                  ))}
                </select>
              </label>
              <label>
                <span>with</span>
                <select className="input" aria-label="Compare to" value={to} onChange={(event) => setTo(event.target.value)}>
                  <option value={DRAFT}>The draft (unsaved)</option>
                  {versions.map((version) => (
                    <option key={version.version} value={String(version.version)}>
                      Version {version.version}
                    </option>
                  ))}
                </select>
              </label>
            </div>
            {loadError ? <Callout tone="danger" title="Could not load a version">{loadError}</Callout> : null}
            {!diff ? (
              <div className="centered">
                <Spinner label="Loading versions to compare" />
              </div>
            ) : (
              <DiffView diff={diff} fromLabel={label(fromValue)} toLabel={label(to)} />
            )}
          </section>
        </div>
      )}
    </Dialog>
  );
}

function DiffView({ diff, fromLabel, toLabel }: { diff: RuleSetDiff; fromLabel: string; toLabel: string }) {
  if (isEmptyDiff(diff)) {
    return <EmptyState title="No difference">{`${capitalize(toLabel)} has the same nodes as ${fromLabel}.`}</EmptyState>;
  }
  return (
    <div className="diff" aria-label={`Changes from ${fromLabel} to ${toLabel}`}>
      <p className="diff-summary">
        From {fromLabel} to {toLabel}: <Badge tone="success">{diff.added.length} added</Badge> <Badge tone="danger">{diff.removed.length} removed</Badge>{' '}
        <Badge tone="warning">{diff.changed.length} changed</Badge>
        {diff.moved.length > 0 ? <> <Badge>{diff.moved.length} moved</Badge></> : null}
      </p>
      <ul className="diff-list">
        {diff.added.map((node) => (
          <li key={`+${node.node_id}`} className="diff-item diff-added">
            <span className="diff-sign" aria-label="added">+</span>
            <span className="mono">{node.node_id}</span>
            <span className="diff-kind">{node.node_type === 'task' ? node.task_name : 'condition'}</span>
          </li>
        ))}
        {diff.removed.map((node) => (
          <li key={`-${node.node_id}`} className="diff-item diff-removed">
            <span className="diff-sign" aria-label="removed">−</span>
            <span className="mono">{node.node_id}</span>
            <span className="diff-kind">{node.node_type === 'task' ? node.task_name : 'condition'}</span>
          </li>
        ))}
        {diff.changed.map((change) => (
          <li key={`~${change.nodeId}`} className="diff-item diff-changed">
            <span className="diff-sign" aria-label="changed">~</span>
            <span className="mono">{change.nodeId}</span>
            <span className="diff-kind">{change.nodeType}</span>
            <table className="diff-fields">
              <tbody>
                {change.changes.map((field) => (
                  <FieldRow key={field.path} change={field} />
                ))}
              </tbody>
            </table>
          </li>
        ))}
        {diff.moved.map((nodeId) => (
          <li key={`>${nodeId}`} className="diff-item diff-moved">
            <span className="diff-sign" aria-label="moved">↔</span>
            <span className="mono">{nodeId}</span>
            <span className="diff-kind">moved on the canvas</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

function FieldRow({ change }: { change: FieldChange }) {
  return (
    <tr>
      <th scope="row" className="mono">
        {change.path}
      </th>
      <td className="diff-before mono">{change.before === undefined ? <span className="diff-unset">not set</span> : show(change.before)}</td>
      <td className="diff-arrow" aria-hidden="true">
        →
      </td>
      <td className="diff-after mono">{change.after === undefined ? <span className="diff-unset">not set</span> : show(change.after)}</td>
    </tr>
  );
}

function show(value: unknown): string {
  if (value === undefined) return '—';
  if (Array.isArray(value) && value.every((item) => item !== null && typeof item === 'object' && 'node_id' in item)) {
    return value.map((item: { node_id: string; state?: string }) => `${item.node_id} (${item.state ?? 'success'})`).join(', ') || '[]';
  }
  return JSON.stringify(value);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
