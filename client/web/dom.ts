type Attrs = Record<string, string | boolean | number | null | undefined | EventListener>;
type Child = Node | string | null | undefined | false;

/**
 * `h("button", { class: "x", onclick: f }, "Label")`: the one way the page builds elements.
 * `on…` attributes become listeners, booleans toggle attributes, null/undefined are skipped.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  el.append(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
  return el;
}

/** Show an error where the user acted, without throwing it away. */
export function reportTo(el: HTMLElement): (error: unknown) => void {
  return (error) => {
    el.textContent = error instanceof Error ? error.message : String(error);
    el.hidden = false;
  };
}
