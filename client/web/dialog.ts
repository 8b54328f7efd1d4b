import { h } from "./dom.js";

/**
 * A modal question with the browser's own `<dialog>`: focus moves into it and back, Escape
 * cancels, and nothing behind it can be clicked. Resolves with the answer, or null when
 * cancelled (`field` given: the text typed; otherwise "ok").
 */
export function ask(options: { title: string; body?: string; confirm: string; danger?: boolean; field?: { label: string; value: string; maxlength: number } }): Promise<string | null> {
  return new Promise((resolve) => {
    const input = options.field && h("input", { name: "answer", value: options.field.value, maxlength: options.field.maxlength, "aria-label": options.field.label, autocomplete: "off" });
    const dialog = h(
      "dialog",
      { class: "ask", "aria-labelledby": "ask-title" },
      h("form", { method: "dialog" },
        h("h2", { id: "ask-title" }, options.title),
        options.body ? h("p", {}, options.body) : null,
        input,
        h("div", { class: "ask-actions" },
          // First in the tree, so Enter in the field confirms (shown last: the actions row is reversed).
          h("button", { type: "submit", value: "ok", class: options.danger ? "danger-solid" : null }, options.confirm),
          h("button", { type: "submit", value: "cancel", class: "secondary", formnovalidate: true }, "Cancel"),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (dialog.returnValue !== "ok") resolve(null);
      else resolve(input ? input.value : "ok");
    });
    document.body.append(dialog);
    dialog.showModal();
    if (input) input.select();
  });
}
