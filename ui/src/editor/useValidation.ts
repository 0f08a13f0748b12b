/**
 * Server validation while editing: the rule set is sent to
 * `POST /payment-rules/validate` 400 ms after the last change; an answer to
 * an older rule set is dropped.
 */
import { useEffect, useState } from 'react';
import { errorMessage, type MoneyFlowClient } from '../api/client';
import type { RulesIndex } from '../model/convert';
import type { FieldProblem } from '../model/problems';
import type { RuleSet } from '../model/rules';

export const VALIDATION_DELAY_MS = 400;

export interface ValidationState {
  /** `checking` while the latest rule set has not been answered for. */
  status: 'checking' | 'valid' | 'invalid' | 'error';
  problems: FieldProblem[];
  /** The index of the rule set the problems are about. */
  index: RulesIndex;
  error?: string;
}

interface Answer {
  json: string;
  problems: FieldProblem[];
  index: RulesIndex;
  error?: string;
}

export function useValidation(client: MoneyFlowClient, ruleSet: RuleSet, json: string, index: RulesIndex, enabled: boolean): ValidationState & { setProblems: (problems: FieldProblem[]) => void } {
  const [answer, setAnswer] = useState<Answer | null>(null);

  useEffect(() => {
    if (!enabled) return;
    const controller = new AbortController();
    const timer = window.setTimeout(() => {
      client.validateRules(ruleSet, controller.signal).then(
        (result) => setAnswer({ json, problems: result.problems, index }),
        (error: unknown) => {
          if (controller.signal.aborted) return;
          setAnswer({ json, problems: [], index, error: errorMessage(error) });
        },
      );
    }, VALIDATION_DELAY_MS);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
    // `json` stands for `ruleSet` and `index`: they change together.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, json, enabled]);

  const current = answer?.json === json;
  const setProblems = (problems: FieldProblem[]) => setAnswer({ json, problems, index });
  if (!answer) return { status: 'checking', problems: [], index, setProblems };
  const status = !current ? 'checking' : answer.error ? 'error' : answer.problems.length > 0 ? 'invalid' : 'valid';
  return { status, problems: answer.problems, index: answer.index, error: answer.error, setProblems };
}
