import type { Attachment, Author, Delivery, DispatchKind, ItemStatus, TurnOptions } from "./primitives.js";

/**
 * A field that shows as several scalars in one place (a composite value in flat columns or
 * map keys): each name with how it is read off the field's value.
 */
type Split<T = never> = Readonly<Record<string, (value: T) => unknown>>;

/**
 * Where a field of a queue item shows besides the thread's state: as a column of the
 * QueueItem table (`row`: true, or the column's name when it differs, or a `Split` into
 * several columns), in the public QueueItem of docs/contract.md (`view`), and as a key of
 * the item's map in the thread's Yjs document (`doc`: like `row`).
 */
interface Places<T = never> {
  readonly row: boolean | string | Split<T>;
  readonly view: boolean;
  readonly doc: boolean | string | Split<T>;
}

/** A field's type rides along as a phantom so the state's type can be read off the table. */
type Field<T, P extends Places<T>> = P & { readonly type?: [T] };
const field = <T>() => <const P extends Places<T>>(places: P): Field<T, P> => places;

const everywhere = { row: true, view: true, doc: true } as const;
const storedAndShown = { row: true, view: true, doc: false } as const;
const stored = { row: true, view: false, doc: false } as const;
const stateOnly = { row: false, view: false, doc: false } as const;
const authorScalars = {
  authorSub: (author: Author | null): string | null => author?.sub ?? null,
  authorName: (author: Author | null): string | null => author?.name ?? null,
} as const;

/**
 * Every field of a queue item, declared once. The state's item type, the projection row
 * (src/store/projections.ts), the public view (views.ts) and the document's item map
 * (src/contract/document.ts) are all derived from this table: a new field is one line here,
 * plus a migration when it has a column.
 */
export const QUEUE_ITEM_FIELDS = {
  queueItemId: field<string>()({ row: "id", view: true, doc: "id" }),
  messageId: field<string>()(everywhere),
  text: field<string>()(everywhere),
  attachments: field<Attachment[]>()(storedAndShown),
  options: field<TurnOptions>()(storedAndShown),
  delivery: field<Delivery>()(everywhere),
  /** Who queued it (null: queued before authors were recorded); flat, as the columns and the document hold it. */
  author: field<Author | null>()({ row: authorScalars, view: true, doc: authorScalars }),
  status: field<ItemStatus>()(everywhere),
  failureReason: field<string | null>()(everywhere),
  position: field<string>()(everywhere),
  attempts: field<number>()(everywhere),
  /** A retryable start failure waits until then before its next attempt. */
  notBefore: field<string | null>()(stored),
  dispatchId: field<string | null>()(stored),
  dispatchKind: field<DispatchKind | null>()(stateOnly),
  /** Holder → until when someone typing through it keeps the item from being claimed (see `isEditLocked`). */
  editLocks: field<Readonly<Record<string, string>>>()(stateOnly),
  /** The thread version at which typing on the item was last revoked (0: never): typing based on an earlier text is refused. */
  typingRevokedAt: field<number>()(stateOnly),
  createdAt: field<string>()(everywhere),
  updatedAt: field<string>()(storedAndShown),
};

type Fields = typeof QUEUE_ITEM_FIELDS;
type FieldName = keyof Fields;

export type QueueItemState = { [K in FieldName]: NonNullable<Fields[K]["type"]>[0] };

/** The name a field takes in a place: its own, the one the table gives, or none (also for a split field). */
type NameIn<Place extends keyof Places, K extends FieldName> = Fields[K][Place] extends string
  ? Fields[K][Place]
  : Fields[K][Place] extends true
    ? K
    : never;

/** The scalars a split field shows as in a place, by name. */
type SplitIn<Place extends keyof Places, K extends FieldName> = Fields[K][Place] extends Split<never>
  ? { [N in keyof Fields[K][Place]]: Fields[K][Place][N] extends (value: never) => infer R ? R : never }
  : Record<never, never>;
type Intersect<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** A field's name in a place, for the fields that show there; a split field as its scalars. */
type Renamed<Place extends keyof Places> = Flat<
  { [K in FieldName as NameIn<Place, K>]: QueueItemState[K] } & Intersect<{ [K in FieldName]: SplitIn<Place, K> }[FieldName]>
>;
type Flat<T> = { [K in keyof T]: T[K] };

/** The public QueueItem. */
export type QueueItemView = Renamed<"view">;
/** An item's columns in the QueueItem table (besides the thread it belongs to). */
export type QueueItemColumns = Renamed<"row">;
/** An item's keys in its document map, with `text` as a plain string (the map holds a Y.Text). */
export type QueueItemDocFields = Renamed<"doc">;

/** Each name that shows in `place` (a split field gives several), with how it is read off an item. */
export const fieldsIn = (place: keyof Places): readonly (readonly [string, (item: QueueItemState) => unknown])[] =>
  (Object.entries(QUEUE_ITEM_FIELDS) as [FieldName, Places<unknown>][]).flatMap(([key, places]) => {
    const name = places[place];
    if (name === false) return [];
    if (typeof name === "object") return Object.entries(name).map(([scalar, of]) => [scalar, (item: QueueItemState) => of(item[key])] as const);
    return [[name === true ? key : name, (item: QueueItemState) => item[key]] as const];
  });

/** A projection of items onto one place's fields, under their names there. */
export function projectTo<Place extends keyof Places>(place: Place): (item: QueueItemState) => Renamed<Place> {
  const fields = fieldsIn(place);
  return (item) => {
    const out: Record<string, unknown> = {};
    for (const [name, of] of fields) out[name] = of(item);
    return out as Renamed<Place>;
  };
}
