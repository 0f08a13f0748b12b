/** The flow as JSON: export (copy, download) and import (paste or a file), replacing the canvas as one undoable step. */
import { useState } from 'react';
import { IconCopy, IconDownload, IconUpload } from '../components/icons';
import { Button, Callout, Dialog, Segmented } from '../components/ui';
import { parseRuleSetInput, type RuleSet } from '../model/rules';

export function ImportExportDialog({
  open,
  onClose,
  ruleSet,
  onImport,
  readOnly,
}: {
  open: boolean;
  onClose: () => void;
  ruleSet: RuleSet;
  onImport: (ruleSet: RuleSet, note?: string) => void;
  readOnly: boolean;
}) {
  const [tab, setTab] = useState<'export' | 'import'>('export');
  const [text, setText] = useState('');
  const [errors, setErrors] = useState<string[]>([]);
  const [copied, setCopied] = useState(false);
  const json = JSON.stringify(ruleSet, null, 2);

  const doImport = (source: string) => {
    const parsed = parseRuleSetInput(source, ruleSet.company_id);
    if (!parsed.ok) {
      setErrors(parsed.errors);
      return;
    }
    setErrors([]);
    setText('');
    onImport(parsed.ruleSet, parsed.note);
  };

  return (
    <Dialog open={open} onClose={onClose} title="Import / export JSON" size="lg" description="The rule set in MoneyFlow’s JSON format, the same the API’s POST /payment-rules/ takes.">
      <Segmented
        label="Import or export"
        value={tab}
        options={[
          { value: 'export', label: 'Export' },
          { value: 'import', label: 'Import' },
        ]}
        onChange={(value) => {
          setTab(value);
          setErrors([]);
        }}
      />
      {tab === 'export' ? (
        <div className="stack">
          <textarea className="input code-area" aria-label="Rule set JSON" readOnly value={json} rows={18} spellCheck={false} />
          <div className="row">
            <Button
              icon={<IconCopy size={14} />}
              onClick={() => {
                void navigator.clipboard.writeText(json).then(() => {
                  setCopied(true);
                  window.setTimeout(() => setCopied(false), 1500);
                });
              }}
            >
              {copied ? 'Copied' : 'Copy'}
            </Button>
            <Button
              icon={<IconDownload size={14} />}
              onClick={() => {
                const url = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
                const link = document.createElement('a');
                link.href = url;
                link.download = `${ruleSet.company_id}-payment-rules.json`;
                link.click();
                URL.revokeObjectURL(url);
              }}
            >
              Download .json
            </Button>
          </div>
        </div>
      ) : readOnly ? (
        <Callout tone="info" title="Read-only">
          Go back to the draft to import a rule set.
        </Callout>
      ) : (
        <div className="stack">
          <p className="panel-help">Paste a rule set (<code className="mono">{'{"company_id", "rules": [...]}'}</code> or just the list of nodes), or choose a file. It replaces the canvas; Undo brings the canvas back.</p>
          <textarea
            className="input code-area"
            aria-label="JSON to import"
            value={text}
            rows={14}
            spellCheck={false}
            placeholder='{ "company_id": "…", "rules": [ … ] }'
            onChange={(event) => setText(event.target.value)}
          />
          {errors.length > 0 ? (
            <Callout tone="danger" title="This is not a rule set the canvas can read">
              <ul className="plain-list">
                {errors.slice(0, 8).map((error) => (
                  <li key={error} className="mono">
                    {error}
                  </li>
                ))}
              </ul>
            </Callout>
          ) : null}
          <div className="row">
            <label className="btn btn-secondary btn-md file-button">
              <IconUpload size={14} />
              <span>Choose file…</span>
              <input
                type="file"
                accept="application/json,.json"
                aria-label="Import a JSON file"
                onChange={(event) => {
                  const file = event.target.files?.[0];
                  if (file) void file.text().then(doImport);
                  event.target.value = '';
                }}
              />
            </label>
            <Button variant="primary" disabled={text.trim() === ''} onClick={() => doImport(text)}>
              Replace canvas
            </Button>
          </div>
        </div>
      )}
    </Dialog>
  );
}
