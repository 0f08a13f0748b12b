/**
 * Unsaved drafts kept while the editor is closed within the tab (a look at
 * the company's runs, then back): in memory only, one per company, dropped
 * on sign-out. A reload still warns before losing a draft.
 */
import type { Graph } from '../model/convert';

const drafts = new Map<string, Graph>();

export function keepDraft(companyId: string, graph: Graph): void {
  drafts.set(companyId, graph);
}

/** The draft kept for a company; the editor keeps or forgets it again when it closes. */
export function peekDraft(companyId: string): Graph | undefined {
  return drafts.get(companyId);
}

export function forgetDraft(companyId: string): void {
  drafts.delete(companyId);
}

export function forgetDrafts(): void {
  drafts.clear();
}
