import type { Attachment, DispatchKind, ItemStatus, TurnOptions } from "./primitives.js";

/**
 * Where a field of a queue item shows besides the thread's state: as a column of the
 * QueueItem table (`row`: true, or the column's name when it differs), in the public
 * QueueItem of docs/contract.md (`view`), and as a key of the item's map in the thread's Yjs
 * document (`doc`: true, or the key's name when it differs).
 */
interface Places {
  readonly row: boolean | string;
  readonly view: boolean;
  readonly doc: boolean | string;
}

/** A field's type rides along as a phantom so the state's type can be read off the table. */
type Field<T, P extends Places> = P & { readonly type?: [T] };
const field = <T>() => <const P extends Places>(places: P): Field<T, P> => places;

const everywhere = { row: true, view: true, doc: true } as const;
const storedAndShown = { row: true, view: true, doc: false } as const;
const stored = { row: true, view: false, doc: false } as const;
const stateOnly = { row: false, view: false, doc: false } as const;

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
  createdAt: field<string>()(everywhere),
  updatedAt: field<string>()(storedAndShown),
};

type Fields = typeof QUEUE_ITEM_FIELDS;
type FieldName = keyof Fields;

export type QueueItemState = { [K in FieldName]: NonNullable<Fields[K]["type"]>[0] };

/** The name a field takes in a place: its own, the one the table gives, or none. */
type NameIn<Place extends keyof Places, K extends FieldName> = Fields[K][Place] extends string
  ? Fields[K][Place]
  : Fields[K][Place] extends true
    ? K
    : never;

/** A field's name in a place, for the fields that show there. */
type Renamed<Place extends keyof Places> = { [K in FieldName as NameIn<Place, K>]: QueueItemState[K] };

/** The public QueueItem. */
export type QueueItemView = Renamed<"view">;
/** An item's columns in the QueueItem table (besides the thread it belongs to). */
export type QueueItemColumns = Renamed<"row">;
/** An item's keys in its document map, with `text` as a plain string (the map holds a Y.Text). */
export type QueueItemDocFields = Renamed<"doc">;

/** Each field that shows in `place`, with its name there. */
export const fieldsIn = (place: keyof Places): readonly (readonly [FieldName, string])[] =>
  (Object.entries(QUEUE_ITEM_FIELDS) as [FieldName, Places][]).flatMap(([key, places]) => {
    const name = places[place];
    return name === false ? [] : [[key, name === true ? key : name] as const];
  });

/** A projection of items onto one place's fields, under their names there. */
export function projectTo<Place extends keyof Places>(place: Place): (item: QueueItemState) => Renamed<Place> {
  const fields = fieldsIn(place);
  return (item) => {
    const out: Record<string, unknown> = {};
    for (const [key, name] of fields) out[name] = item[key];
    return out as Renamed<Place>;
  };
}
