import type { ThreadState } from "./state.js";

/**
 * Where a field of a thread shows besides its state: as a column of the Thread table (`row`:
 * true, or the column's name when it differs) and as a key of the meta map of the thread's
 * Yjs document (`doc`: likewise), with how it is read off the state.
 */
interface Places {
  readonly row: boolean | string;
  readonly doc: boolean | string;
}
type Field<T, P extends Places> = P & { readonly of: (s: ThreadState) => T };
const field = <T, const P extends Places>(of: (s: ThreadState) => T, places: P): Field<T, P> => ({ of, ...places });

const row = { row: true, doc: false } as const;
const both = { row: true, doc: true } as const;

/**
 * Every thread field the projections and the document show, declared once: the Thread row
 * (src/store/projections.ts) and the document's meta (src/contract/document.ts) are derived
 * from it. A new field is one line here, plus a migration when it has a column.
 */
export const THREAD_FIELDS = {
  threadId: field((s) => s.threadId, { row: "id", doc: true }),
  workspaceId: field((s) => s.workspaceId, row),
  title: field((s) => s.title, row),
  version: field((s) => s.version, both),
  archived: field((s) => s.archived, row),
  deleted: field((s) => s.deleted, row),
  sessionStatus: field((s) => s.session.status, { row: true, doc: "session" }),
  sessionError: field((s) => s.session.error, row),
  activeTurnId: field((s) => s.session.activeTurnId, row),
  paused: field((s) => s.paused, both),
  pauseReason: field((s) => s.pauseReason, both),
  /** When a rate-limit hold ends by itself: the board counts down to it. */
  resumeAt: field((s) => s.resumeAt, both),
  mode: field((s) => s.mode, both),
  createdAt: field((s) => s.createdAt, row),
  updatedAt: field((s) => s.updatedAt, row),
  /** The agent's own session/thread id, sent on every dispatch. */
  runtimeSessionId: field((s) => s.session.runtimeSessionId, row),
};

type Fields = typeof THREAD_FIELDS;
type NameIn<Place extends keyof Places, K extends keyof Fields> = Fields[K][Place] extends string
  ? Fields[K][Place]
  : Fields[K][Place] extends true
    ? K
    : never;

/** A thread's fields in one place, under their names there. */
export type ThreadFieldsIn<Place extends keyof Places> = { [K in keyof Fields as NameIn<Place, K>]: ReturnType<Fields[K]["of"]> };

/** Each field that shows in `place`, with its name there and how it is read. */
const fieldsIn = (place: keyof Places): (readonly [string, (s: ThreadState) => unknown])[] =>
  Object.entries(THREAD_FIELDS as Record<string, Field<unknown, Places>>).flatMap(([key, f]) => {
    const name = f[place];
    return name === false ? [] : [[name === true ? key : name, f.of] as const];
  });

/** The names of the fields that show in `place`. */
export const threadFieldNames = (place: keyof Places): string[] => fieldsIn(place).map(([name]) => name);

/** A projection of a thread's state onto one place's fields. */
export function projectThread<Place extends keyof Places>(place: Place): (s: ThreadState) => ThreadFieldsIn<Place> {
  const fields = fieldsIn(place);
  return (s) => Object.fromEntries(fields.map(([name, of]) => [name, of(s)])) as ThreadFieldsIn<Place>;
}
