/** How long a finger rests on a handle before the item lifts: shorter would steal scrolls. */
const LONG_PRESS_MS = 350;
/** A finger that moves this far before the press completes is scrolling, not dragging. */
const SLOP_PX = 10;

export interface TouchDrag {
  start(): void;
  move(x: number, y: number): void;
  drop(x: number, y: number): void;
  cancel(): void;
}

/**
 * Long-press, then drag, for touch screens (HTML5 drag and drop never starts from a finger):
 * the press lifts the item, moving the finger marks where it would land, lifting the finger
 * drops it. A mouse keeps using native drag and drop; a keyboard, the arrow keys.
 */
export function touchDrag(handle: HTMLElement, drag: TouchDrag): void {
  let pointer: number | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let origin = { x: 0, y: 0 };
  let lifted = false;

  const reset = () => {
    clearTimeout(timer);
    if (pointer !== null && handle.hasPointerCapture(pointer)) handle.releasePointerCapture(pointer);
    pointer = null;
    lifted = false;
  };

  handle.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" || pointer !== null) return;
    pointer = e.pointerId;
    origin = { x: e.clientX, y: e.clientY };
    timer = setTimeout(() => {
      lifted = true;
      handle.setPointerCapture(e.pointerId);
      navigator.vibrate?.(15);
      drag.start();
    }, LONG_PRESS_MS);
  });
  handle.addEventListener("pointermove", (e) => {
    if (e.pointerId !== pointer) return;
    if (!lifted) {
      if (Math.hypot(e.clientX - origin.x, e.clientY - origin.y) > SLOP_PX) reset();
      return;
    }
    e.preventDefault();
    drag.move(e.clientX, e.clientY);
  });
  handle.addEventListener("pointerup", (e) => {
    if (e.pointerId !== pointer) return;
    if (lifted) drag.drop(e.clientX, e.clientY);
    reset();
  });
  handle.addEventListener("pointercancel", (e) => {
    if (e.pointerId !== pointer) return;
    if (lifted) drag.cancel();
    reset();
  });
  // A long press would otherwise open the context menu (or start a text selection) on phones.
  handle.addEventListener("contextmenu", (e) => e.preventDefault());
}
