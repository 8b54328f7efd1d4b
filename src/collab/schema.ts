import * as Y from "yjs";
import {
  applyTextChange, docItemOf, docMetaOf, ITEM_FIELDS, itemScalarsOf, itemsOf, META_FIELDS, metaOf, readItemFields, readMetaFields,
} from "../contract/document.js";
import {
  assertNever, compareOrder, orderedItems, type QueueItemState, type StoredEvent, type ThreadState,
} from "../domain/index.js";

/**
 * The Yjs document of a thread (docs/contract.md, "The thread's Yjs document") and every server
 * write to it. These functions only write inside the caller's transaction; the caller picks
 * the origin, which is how the rest of collab tells server writes from client writes.
 */

export { ITEM_FIELDS, ITEMS, META, META_FIELDS, itemsOf, metaOf, type ItemField } from "../contract/document.js";

/** What a reader of the document sees, in queue order: the shape tests compare with the projection. */
export interface DocView {
  meta: ReturnType<typeof readMetaFields>;
  items: (ReturnType<typeof readItemFields> & { id: string; position: string })[];
}

export function readDoc(doc: Y.Doc): DocView {
  const items = [...itemsOf(doc).entries()].map(([key, map]) => {
    const fields = readItemFields(map);
    return { ...fields, id: key, position: String(fields.position) };
  });
  items.sort((a, b) => compareOrder({ position: a.position, queueItemId: a.id }, { position: b.position, queueItemId: b.id }));
  return { meta: readMetaFields(doc), items };
}

/** The document a thread's state should produce: what `readDoc` must equal once every replica settled. */
export function viewOfState(state: ThreadState): DocView {
  return { meta: docMetaOf(state), items: orderedItems(state).map(docItemOf) };
}

const setIfChanged = (map: Y.Map<unknown>, key: string, value: unknown) => {
  if (map.get(key) !== value) map.set(key, value);
};

export function writeMeta(doc: Y.Doc, state: ThreadState): void {
  const meta = metaOf(doc);
  for (const [k, v] of Object.entries(docMetaOf(state))) setIfChanged(meta, k, v);
  for (const key of meta.keys()) if (!(META_FIELDS as readonly string[]).includes(key)) meta.delete(key);
}

/**
 * A fresh item map with the log's values (new content: only for items the document lacks,
 * and written by one replica at a time, like texts: two replicas creating the same item
 * leave two maps, of which the document keeps one, and keystrokes into the other are lost).
 */
export function writeNewItem(doc: Y.Doc, item: QueueItemState): void {
  const map = new Y.Map<unknown>();
  for (const [k, v] of Object.entries(itemScalarsOf(item))) map.set(k, v);
  map.set("text", new Y.Text(item.text));
  itemsOf(doc).set(item.queueItemId, map);
}

/** Brings every server-owned field of an existing item map to the log's values (a missing one is the creator's to write). */
export function writeItemFields(doc: Y.Doc, item: QueueItemState, options: { position: boolean } = { position: true }): void {
  const map = itemsOf(doc).get(item.queueItemId);
  if (!(map instanceof Y.Map)) return;
  for (const [k, v] of Object.entries(itemScalarsOf(item))) {
    if (k === "position" && !options.position) continue;
    setIfChanged(map, k, v);
  }
  if (!(map.get("text") instanceof Y.Text)) map.set("text", new Y.Text(item.text));
  for (const key of map.keys()) if (!(ITEM_FIELDS as readonly string[]).includes(key)) map.delete(key);
}

/**
 * Makes an item's text equal `text` by replacing only the span that differs, so text typed
 * concurrently elsewhere in the string merges instead of being wiped or duplicated. Every
 * such write inserts (see `applyTextChange`): a device's state vector then shows whether it
 * holds the write (`Bridge.settle`).
 */
export function writeText(doc: Y.Doc, itemId: string, text: string): void {
  const ytext = sharedTextOf(doc, itemId);
  if (ytext) applyTextChange(ytext, text, { inserts: true });
}

/** The item's shared text (undefined: the document has no such item, or its text is not a Y.Text). */
export function sharedTextOf(doc: Y.Doc, itemId: string): Y.Text | undefined {
  const text = itemsOf(doc).get(itemId)?.get("text");
  return text instanceof Y.Text ? text : undefined;
}

/** The item's text as a string (undefined: as for `sharedTextOf`). */
export const textOf = (doc: Y.Doc, itemId: string): string | undefined => sharedTextOf(doc, itemId)?.toString();

/**
 * Deletes whatever a client put into an item's text besides characters: formatting marks
 * (which carry any value) and embeds. The text of an item is a plain string in the log.
 */
export function keepPlainText(text: Y.Text, transaction: Y.Transaction): void {
  for (let item = text._start; item !== null; item = item.right) {
    if (!item.deleted && !(item.content instanceof Y.ContentString)) item.delete(transaction);
  }
}

/**
 * The effect of one committed event on the document, given the thread's state right after it.
 * Neither text nor new items are written here: an edit made through the document is already
 * in it (writing an older text over newer typing would undo it), and an edit made through
 * the API or a new item inserts content, which only one replica may write (see `textsToWrite` in thread-doc.ts).
 */
export function writeEvent(doc: Y.Doc, event: StoredEvent, after: ThreadState): void {
  switch (event.type) {
    case "thread.created":
    case "thread.archived":
    case "thread.renamed":
    case "session.changed":
    case "queue.paused":
    case "queue.resumed":
    case "queue.mode-changed":
    case "turn.started":
    case "turn.ended":
    case "message.sent":
    case "thread.interrupt-requested":
      break;
    case "thread.deleted":
      for (const key of [...itemsOf(doc).keys()]) itemsOf(doc).delete(key);
      break;
    case "queue.item-added":
    case "queue.item-edited":
    case "queue.item-edit-locked":
    case "queue.item-typing-revoked":
      break;
    case "queue.item-moved":
    case "queue.item-delivery-changed":
    case "queue.item-send-started":
    case "queue.item-send-failed":
    case "queue.item-requeued": {
      const item = after.items.get(event.payload.queueItemId);
      if (item) writeItemFields(doc, item);
      break;
    }
    case "queue.item-removed":
    case "queue.item-resolved":
      itemsOf(doc).delete(event.payload.queueItemId);
      break;
    default:
      assertNever(event);
  }
  writeMeta(doc, after);
}

/** Items whose document text an event changes through the API (never through the document). */
export const editedText = (event: StoredEvent): string | null =>
  event.type === "queue.item-edited" && event.payload.via !== "document" ? event.payload.queueItemId : null;

/** The item, text and typist of an edit made through the document (never written back into it). */
export const typedText = (event: StoredEvent): { id: string; text: string; actor: string } | null =>
  event.type === "queue.item-edited" && event.payload.via === "document"
    ? { id: event.payload.queueItemId, text: event.payload.text, actor: event.actor }
    : null;

/**
 * Brings a document to the log's state by server writes: the load-time reconciliation and
 * the answer to a gap in the events. Items with unflushed client edits keep their position,
 * which the pending commands are about to commit. Returns the items the document lacks or
 * whose text differs from the log, for the caller to write (content must come from one replica only).
 */
export function reconcile(doc: Y.Doc, state: ThreadState, keep: { position: ReadonlySet<string> }): string[] {
  const items = itemsOf(doc);
  const texts: string[] = [];
  for (const key of [...items.keys()]) if (!state.items.get(key)) items.delete(key);
  for (const item of state.items.values()) {
    if (!(items.get(item.queueItemId) instanceof Y.Map)) {
      texts.push(item.queueItemId);
      continue;
    }
    writeItemFields(doc, item, { position: !keep.position.has(item.queueItemId) });
    const text = items.get(item.queueItemId)?.get("text");
    if (text instanceof Y.Text && text.toString() !== item.text) texts.push(item.queueItemId);
  }
  writeMeta(doc, state);
  return texts;
}
