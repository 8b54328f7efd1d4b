import * as Y from "yjs";
import { fieldsIn, projectTo, type QueueItemDocFields, type QueueItemState } from "../domain/queue-item.js";
import type { ThreadState } from "../domain/state.js";
import { projectThread, threadFieldNames, type ThreadFieldsIn } from "../domain/thread-fields.js";

/**
 * The thread's shared Yjs document, declared once for the server (src/collab) and the SDK
 * (client/): its maps, the fields of an item and of the meta, how each is derived from the
 * log's state, how a reader reads them, and the one text diff both sides write with. See
 * docs/contract.md, "The thread's Yjs document".
 */

export const META = "meta";
export const ITEMS = "items";

export const metaOf = (doc: Y.Doc): Y.Map<unknown> => doc.getMap(META);
export const itemsOf = (doc: Y.Doc): Y.Map<Y.Map<unknown>> => doc.getMap(ITEMS);

/** One item as the document shows it: the item's fields marked `doc` in src/domain/queue-item.ts. */
export type DocItem = QueueItemDocFields;
/** The meta map: the thread's fields marked `doc` in src/domain/thread-fields.ts. */
export type DocMeta = ThreadFieldsIn<"doc">;
export type ItemField = keyof DocItem;

/** The keys of an item map; `text` (a Y.Text) and `position` are the only ones a client may write. */
export const ITEM_FIELDS = fieldsIn("doc").map(([key]) => key) as readonly ItemField[];
export const META_FIELDS = threadFieldNames("doc") as readonly (keyof DocMeta)[];

const docFields = projectTo("doc");

/** An item's scalar fields as the document must hold them. */
export function itemScalarsOf(item: QueueItemState): Omit<DocItem, "text"> {
  const { text: _text, ...scalars } = docFields(item);
  return scalars;
}
/** An item as the document must show it. */
export const docItemOf = (item: QueueItemState): DocItem => docFields(item);
/** The meta as the document must hold it. */
export const docMetaOf: (state: ThreadState) => DocMeta = projectThread("doc");

/**
 * An item map's fields as they are, unchecked (a client may have written anything): the
 * text as a string, every other field as found.
 */
export function readItemFields(map: unknown): { [K in ItemField]: unknown } & { text: string } {
  const get = (key: string) => (map instanceof Y.Map ? map.get(key) : undefined);
  const textOf = (text: unknown) => (text instanceof Y.Text ? text.toString() : String(text));
  return Object.fromEntries(ITEM_FIELDS.map((key) => [key, key === "text" ? textOf(get(key)) : get(key)])) as {
    [K in ItemField]: unknown;
  } & { text: string };
}

/** The meta map's fields as they are, unchecked. */
export const readMetaFields = (doc: Y.Doc): { [K in keyof DocMeta]: unknown } =>
  Object.fromEntries(META_FIELDS.map((key) => [key, metaOf(doc).get(key)])) as { [K in keyof DocMeta]: unknown };

/**
 * Makes `shared` equal `next` by replacing only the span that differs, so text typed
 * concurrently elsewhere in the string merges instead of being wiped or duplicated.
 * `inserts`: a change that would only delete also deletes one kept character next to the
 * span and inserts it again, so the write has an id of its own (a state vector shows
 * inserts, never deletes: the server tells by it which devices hold its write).
 */
export function applyTextChange(shared: Y.Text, next: string, { inserts = false } = {}): void {
  const current = shared.toString();
  if (current === next) return;
  let start = 0;
  const max = Math.min(current.length, next.length);
  while (start < max && current[start] === next[start]) start++;
  let end = 0;
  while (end < max - start && current[current.length - 1 - end] === next[next.length - 1 - end]) end++;
  if (inserts && start + end === next.length && next.length > 0) {
    if (start > 0) start--;
    else end--;
  }
  const removed = current.length - start - end;
  if (removed > 0) shared.delete(start, removed);
  const inserted = next.slice(start, next.length - end);
  if (inserted) shared.insert(start, inserted);
}

/**
 * The awareness (presence) field in which a device names the item it is typing in:
 * `awareness.setLocalStateField(EDITING, queueItemId)`, null or absent when none. While it
 * names an item and that device's keystrokes keep coming, the item is not sent to the agent
 * (the edit lock: docs/design.md).
 */
export const EDITING = "editing";

/** The item a presence state names as being edited, if any. */
export function editingItemOf(state: unknown): string | null {
  const value = typeof state === "object" && state !== null ? (state as Record<string, unknown>)[EDITING] : null;
  return typeof value === "string" ? value : null;
}
