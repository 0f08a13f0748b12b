/**
 * A text field that takes a literal or a `$context` path, with completion:
 * typing `$` (or pressing ↓ / Ctrl+Space) opens the list of known paths.
 * An ARIA combobox: ↑/↓ move, Enter or Tab picks, Escape closes.
 */
import { useId, useMemo, useRef, useState, type InputHTMLAttributes } from 'react';
import { filterSuggestions, type PathSuggestion } from '../model/paths';

export function PathInput({
  value,
  onValueChange,
  suggestions,
  invalid,
  extraOptions = [],
  ...props
}: Omit<InputHTMLAttributes<HTMLInputElement>, 'value' | 'onChange'> & {
  value: string;
  onValueChange: (value: string) => void;
  suggestions: readonly PathSuggestion[];
  invalid?: boolean;
  /** Literal choices offered too (an enum's values). */
  extraOptions?: readonly string[];
}) {
  const [open, setOpenState] = useState(false);
  const [above, setAbove] = useState(false);
  const [active, setActive] = useState(0);
  // What is typed, while the field has the focus: the stored value may read
  // differently (`1.` is stored as the number 1), and typing must not jump.
  const [draft, setDraft] = useState<string | null>(null);
  const text = draft ?? value;
  const listId = useId();
  const inputRef = useRef<HTMLInputElement>(null);

  const options = useMemo(() => {
    const literal = extraOptions
      .filter((option) => option.toLowerCase().includes(text.toLowerCase()) && option !== text)
      .map((option): PathSuggestion & { literal: true } => ({ path: option, detail: 'value', group: 'Event', literal: true }));
    const paths = text === '' || text.startsWith('$') ? filterSuggestions(suggestions, text, 40) : [];
    return [...literal, ...paths];
  }, [extraOptions, suggestions, text]);

  const show = open && options.length > 0;

  /** Opens (or closes) the list, above the field when there is more room there. */
  const setOpen = (next: boolean) => {
    if (next && inputRef.current) {
      const rect = inputRef.current.getBoundingClientRect();
      const below = window.innerHeight - rect.bottom;
      setAbove(below < 280 && rect.top > below);
    }
    setOpenState(next);
  };

  const pick = (option: PathSuggestion) => {
    setDraft(option.path);
    onValueChange(option.path);
    setOpen(false);
  };

  return (
    <div className="path-input">
      <input
        ref={inputRef}
        {...props}
        className={`input mono${invalid ? ' is-invalid' : ''}${props.className ? ` ${props.className}` : ''}`}
        value={text}
        role="combobox"
        aria-expanded={show}
        aria-controls={listId}
        aria-autocomplete="list"
        aria-invalid={invalid ? true : undefined}
        aria-activedescendant={show ? `${listId}-${active}` : undefined}
        autoComplete="off"
        spellCheck={false}
        onChange={(event) => {
          setDraft(event.target.value);
          onValueChange(event.target.value);
          setActive(0);
          setOpen(event.target.value.startsWith('$') || extraOptions.length > 0);
        }}
        onFocus={() => {
          if (text.startsWith('$') || extraOptions.length > 0) setOpen(true);
        }}
        onBlur={() => {
          setOpen(false);
          setDraft(null);
        }}
        onKeyDown={(event) => {
          if ((event.key === 'ArrowDown' && !show) || (event.key === ' ' && event.ctrlKey)) {
            event.preventDefault();
            setOpen(true);
            setActive(0);
            return;
          }
          if (!show) return;
          if (event.key === 'ArrowDown') {
            event.preventDefault();
            setActive((index) => (index + 1) % options.length);
          } else if (event.key === 'ArrowUp') {
            event.preventDefault();
            setActive((index) => (index - 1 + options.length) % options.length);
          } else if (event.key === 'Enter' || (event.key === 'Tab' && text.startsWith('$'))) {
            const option = options[active];
            if (option) {
              event.preventDefault();
              pick(option);
            }
          } else if (event.key === 'Escape') {
            event.preventDefault();
            event.stopPropagation();
            setOpen(false);
          }
        }}
      />
      {show ? (
        <ul className={`path-options${above ? ' is-above' : ''}`} id={listId} role="listbox" aria-label="Suggestions">
          {options.map((option, index) => (
            <li
              key={`${option.group}:${option.path}`}
              id={`${listId}-${index}`}
              role="option"
              aria-selected={index === active}
              className={index === active ? 'is-active' : undefined}
              onMouseDown={(event) => {
                event.preventDefault();
                pick(option);
              }}
              onMouseEnter={() => setActive(index)}
            >
              <span className="path-option-path mono">{option.path}</span>
              <span className="path-option-detail">{option.detail}</span>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
