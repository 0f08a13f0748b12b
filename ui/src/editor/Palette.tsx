/**
 * The building blocks: a Condition and every task of the catalogue, grouped
 * and searchable. Drag one onto the canvas, or press Enter on it to add it
 * in the middle of the view.
 */
import { useMemo, useState } from 'react';
import { IconCondition, IconGrip, IconSearch } from '../components/icons';
import { TASK_GROUPS, taskGroup, taskTitle, type TaskSpec } from '../model/catalogue';
import { TaskIcon } from './nodes/task';

export const DRAG_TYPE = 'application/x-moneyflow-node';

export interface PaletteItem {
  kind: 'condition' | 'task';
  taskName?: string;
}

interface Entry {
  item: PaletteItem;
  title: string;
  description: string;
  group: string;
  search: string;
}

export function Palette({ tasks, onAdd, disabled }: { tasks: readonly TaskSpec[]; onAdd: (item: PaletteItem) => void; disabled: boolean }) {
  const [query, setQuery] = useState('');
  const groups = useMemo(() => {
    const entries: Entry[] = [
      {
        item: { kind: 'condition' },
        title: 'Condition',
        description: 'Branch on the event: success when its expectations hold.',
        group: 'Logic',
        search: 'condition if branch expect check logic',
      },
      ...tasks.map((task) => ({
        item: { kind: 'task' as const, taskName: task.name },
        title: taskTitle(task, task.name),
        description: task.description ?? '',
        group: taskGroup(task.name),
        search: `${task.name} ${task.title ?? ''} ${task.description ?? ''} ${taskGroup(task.name)}`.toLowerCase(),
      })),
    ];
    const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const shown = entries.filter((entry) => words.every((word) => entry.search.includes(word) || entry.title.toLowerCase().includes(word)));
    const order = ['Logic', ...TASK_GROUPS];
    const byGroup = new Map<string, Entry[]>();
    for (const entry of shown) {
      const list = byGroup.get(entry.group);
      if (list) list.push(entry);
      else byGroup.set(entry.group, [entry]);
    }
    return [...byGroup.entries()].sort(([a], [b]) => rank(order, a) - rank(order, b));
  }, [tasks, query]);

  return (
    <aside className="palette" aria-label="Building blocks">
      <div className="palette-header">
        <h2>Building blocks</h2>
        <p>Drag onto the canvas, or press Enter.</p>
        <label className="search-input">
          <IconSearch size={14} />
          <input type="search" placeholder="Search tasks" aria-label="Search building blocks" value={query} onChange={(event) => setQuery(event.target.value)} />
        </label>
      </div>
      <div className="palette-groups">
        {groups.length === 0 ? <p className="palette-empty">No building block matches “{query}”.</p> : null}
        {groups.map(([group, entries]) => (
          <section key={group} className="palette-group" aria-label={group}>
            <h3>{group}</h3>
            <ul>
              {entries.map((entry) => (
                <li key={entry.item.taskName ?? 'condition'}>
                  <button
                    type="button"
                    className={`palette-item palette-item-${entry.item.kind}`}
                    draggable={!disabled}
                    disabled={disabled}
                    data-testid={`palette-${entry.item.taskName ?? 'condition'}`}
                    aria-label={`${entry.title}: drag onto the canvas, or press Enter to add`}
                    title={entry.item.taskName ?? entry.description}
                    onDragStart={(event) => {
                      event.dataTransfer.setData(DRAG_TYPE, JSON.stringify(entry.item));
                      event.dataTransfer.setData('text/plain', entry.item.taskName ?? 'condition');
                      event.dataTransfer.effectAllowed = 'copy';
                    }}
                    onClick={() => onAdd(entry.item)}
                  >
                    <span className={`palette-icon palette-icon-${entry.item.kind}`}>
                      {entry.item.kind === 'condition' ? <IconCondition size={16} /> : <TaskIcon name={entry.item.taskName ?? ''} size={16} />}
                    </span>
                    <span className="palette-text">
                      <span className="palette-title">{entry.title}</span>
                      <span className="palette-description">{entry.description}</span>
                    </span>
                    <IconGrip size={14} className="palette-grip" />
                  </button>
                </li>
              ))}
            </ul>
          </section>
        ))}
      </div>
    </aside>
  );
}

function rank(order: readonly string[], group: string): number {
  const index = order.indexOf(group);
  return index === -1 ? order.length : index;
}

export function readDraggedItem(data: DataTransfer): PaletteItem | null {
  const raw = data.getData(DRAG_TYPE);
  if (!raw) return null;
  try {
    const parsed = JSON.parse(raw) as Partial<PaletteItem>;
    if (parsed.kind === 'condition') return { kind: 'condition' };
    if (parsed.kind === 'task' && typeof parsed.taskName === 'string') return { kind: 'task', taskName: parsed.taskName };
  } catch {
    return null;
  }
  return null;
}
