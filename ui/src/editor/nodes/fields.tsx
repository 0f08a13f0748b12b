/** Value editors for condition rows: one value with its type, or a list of values as chips. */
import { useState } from 'react';
import { IconClose } from '../../components/icons';

type ValueType = 'text' | 'number' | 'boolean' | 'null' | 'json';

function typeOf(value: unknown): ValueType {
  if (value === null) return 'null';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'string' || value === undefined) return 'text';
  return 'json';
}

function toText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

function fromText(text: string, type: ValueType): unknown {
  switch (type) {
    case 'number': {
      const number = Number(text);
      return text.trim() !== '' && Number.isFinite(number) ? number : text;
    }
    case 'boolean':
      return text.trim().toLowerCase() !== 'false';
    case 'null':
      return null;
    case 'json':
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    default:
      return text;
  }
}

export function SingleValueInput({
  value,
  onChange,
  label,
  disabled,
  invalid,
}: {
  value: unknown;
  onChange: (value: unknown) => void;
  label: string;
  disabled?: boolean;
  invalid?: boolean;
}) {
  const type = typeOf(value);
  // What is typed while the field has the focus (`1.` is stored as 1, and must still show as typed).
  const [draft, setDraft] = useState<string | null>(null);
  return (
    <div className="value-input">
      {type === 'boolean' ? (
        <select className="input" aria-label={label} value={String(value)} disabled={disabled} onChange={(event) => onChange(event.target.value === 'true')}>
          <option value="true">true</option>
          <option value="false">false</option>
        </select>
      ) : type === 'null' ? (
        <input className="input" aria-label={label} value="null" disabled readOnly />
      ) : (
        <input
          className={`input${type === 'json' ? ' mono' : ''}${invalid ? ' is-invalid' : ''}`}
          aria-label={label}
          aria-invalid={invalid ? true : undefined}
          value={draft ?? toText(value)}
          disabled={disabled}
          placeholder="value"
          inputMode={type === 'number' ? 'decimal' : undefined}
          onChange={(event) => {
            setDraft(event.target.value);
            onChange(fromText(event.target.value, type));
          }}
          onBlur={() => setDraft(null)}
        />
      )}
      <select
        className="input value-type"
        aria-label={label.startsWith("Value") ? label.replace(/^Value/, "Value type") : `Type of ${label}`}
        value={type}
        disabled={disabled}
        onChange={(event) => {
          const next = event.target.value as ValueType;
          const text = toText(value);
          onChange(next === 'boolean' ? text === 'true' || value === true : fromText(text, next));
        }}
      >
        <option value="text">text</option>
        <option value="number">number</option>
        <option value="boolean">true/false</option>
        <option value="null">null</option>
        {type === 'json' ? <option value="json">JSON</option> : null}
      </select>
    </div>
  );
}

/** A list of values as chips; type and press Enter (or a comma) to add. */
export function ListValueInput({
  values,
  onChange,
  label,
  disabled,
  invalid,
}: {
  values: readonly unknown[];
  onChange: (values: unknown[]) => void;
  label: string;
  disabled?: boolean;
  invalid?: boolean;
}) {
  const [draft, setDraft] = useState('');
  const add = (text: string) => {
    const parts = text
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== '');
    if (parts.length > 0) onChange([...values, ...parts]);
    setDraft('');
  };
  return (
    <div className={`chips-input${invalid ? ' is-invalid' : ''}${disabled ? ' is-disabled' : ''}`}>
      {values.map((value, index) => (
        <span className="chip" key={`${index}:${toText(value)}`}>
          <span className={typeof value === 'string' ? undefined : 'mono'}>{typeof value === 'string' ? value : JSON.stringify(value)}</span>
          {disabled ? null : (
            <button type="button" className="chip-remove" aria-label={`Remove ${toText(value)}`} onClick={() => onChange(values.filter((_, i) => i !== index))}>
              <IconClose size={12} />
            </button>
          )}
        </span>
      ))}
      {disabled ? null : (
        <input
          className="chips-draft"
          aria-label={label}
          value={draft}
          placeholder={values.length === 0 ? 'type a value, press Enter' : 'add…'}
          onChange={(event) => {
            const text = event.target.value;
            if (text.endsWith(',')) add(text);
            else setDraft(text);
          }}
          onKeyDown={(event) => {
            if (event.key === 'Enter') {
              event.preventDefault();
              add(draft);
            } else if (event.key === 'Backspace' && draft === '' && values.length > 0) {
              onChange(values.slice(0, -1));
            }
          }}
          onBlur={() => add(draft)}
        />
      )}
    </div>
  );
}
