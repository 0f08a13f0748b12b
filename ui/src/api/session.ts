/** The signed-in credential, kept in sessionStorage (gone when the tab closes). */
import { z } from 'zod';
import type { Principal } from './client';

const sessionSchema = z.object({
  token: z.string().min(1),
  principal: z.discriminatedUnion('kind', [z.object({ kind: z.literal('admin') }), z.object({ kind: z.literal('company'), companyId: z.string() })]),
});

const KEY = 'moneyflow.session';

export interface Session {
  token: string;
  principal: Principal;
}

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const parsed = sessionSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
