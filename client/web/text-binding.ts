import type * as Y from "yjs";
import { applyTextChange } from "../queue.js";

/**
 * Two-way binding of a textarea to a Y.Text: local typing becomes the smallest Y.Text
 * change, remote changes rewrite the value and carry the caret through them, so two people
 * typing in one item see each other's letters without losing their place.
 */
export function bindTextarea(text: Y.Text, el: HTMLTextAreaElement): () => void {
  const origin = {};
  el.value = text.toString();
  const onInput = () => text.doc!.transact(() => applyTextChange(text, el.value), origin);
  const onRemote = (event: Y.YTextEvent, tr: Y.Transaction) => {
    if (tr.origin === origin) return;
    const focused = document.activeElement === el;
    let [start, end] = [el.selectionStart, el.selectionEnd];
    let index = 0;
    for (const op of event.delta) {
      if (op.retain !== undefined) index += op.retain;
      else if (typeof op.insert === "string") {
        const n = op.insert.length;
        if (index < start) start += n;
        if (index < end) end += n;
        index += n;
      } else if (op.delete !== undefined) {
        const n = op.delete;
        start = start > index ? Math.max(index, start - n) : start;
        end = end > index ? Math.max(index, end - n) : end;
      }
    }
    el.value = text.toString();
    if (focused) el.setSelectionRange(start, end);
  };
  el.addEventListener("input", onInput);
  text.observe(onRemote);
  return () => {
    el.removeEventListener("input", onInput);
    text.unobserve(onRemote);
  };
}
