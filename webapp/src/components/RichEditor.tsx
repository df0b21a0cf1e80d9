import type { RefObject } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";

import { t } from "../i18n";
import type { MessageKey } from "../i18n";
import { sanitizeComposed } from "../mail/richText";

type Format = "bold" | "italic" | "underline" | "insertUnorderedList" | "insertOrderedList" | "link" | "quote";

const BUTTONS: { format: Format; label: MessageKey; text: string; shortcut?: string }[] = [
  { format: "bold", label: "compose.bold", text: "B", shortcut: "Control+B" },
  { format: "italic", label: "compose.italic", text: "I", shortcut: "Control+I" },
  { format: "underline", label: "compose.underline", text: "U", shortcut: "Control+U" },
  { format: "insertUnorderedList", label: "compose.bulleted", text: "•" },
  { format: "insertOrderedList", label: "compose.numbered", text: "1." },
  { format: "link", label: "compose.link", text: "" },
  { format: "quote", label: "compose.quote", text: "❝" },
];

const SHORTCUTS: Record<string, Format> = { b: "bold", i: "italic", u: "underline" };

/** What the user typed as a link target, as a link that cannot run anything (or null). */
export function linkTarget(typed: string): string | null {
  const text = typed.trim();
  if (text === "") return null;
  if (/^(?:https?:\/\/|mailto:)\S+$/i.test(text)) return text;
  if (/^[^\s@:/]+@[^\s@:/]+\.[^\s@:/]+$/.test(text)) return `mailto:${text}`;
  if (/^[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:[/?#]\S*)?$/i.test(text)) return `https://${text}`;
  return null;
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function closest(node: Node | null, tag: string, within: HTMLElement): Element | null {
  for (let current = node; current && current !== within; current = current.parentNode) {
    if (current instanceof Element && current.tagName === tag) return current;
  }
  return null;
}

/**
 * The rich text editor: a labelled contenteditable region under a formatting toolbar
 * (ARIA toolbar with roving focus, aria-pressed buttons), with Ctrl/Cmd+B/I/U. Its content
 * is set once, in its first render, and read by the composer from ``editor`` when needed:
 * re-rendering never overwrites what is being typed. Pasted HTML is sanitised first.
 */
export function RichEditor({
  initial,
  editor,
  onInput,
}: {
  initial: string;
  editor: RefObject<HTMLDivElement | null>;
  onInput: () => void;
}) {
  const [pressed, setPressed] = useState<Partial<Record<Format, boolean>>>({});
  const [focusIndex, setFocusIndex] = useState(0);
  const toolbar = useRef<HTMLDivElement>(null);
  // The first content only: a constant object, so Preact never sets it again.
  const [content] = useState(() => ({ __html: sanitizeComposed(initial) }));

  function update(): void {
    const area = editor.current;
    const selection = document.getSelection();
    if (!area || !selection || !area.contains(selection.anchorNode)) return;
    setPressed({
      bold: document.queryCommandState("bold"),
      italic: document.queryCommandState("italic"),
      underline: document.queryCommandState("underline"),
      insertUnorderedList: document.queryCommandState("insertUnorderedList"),
      insertOrderedList: document.queryCommandState("insertOrderedList"),
      link: closest(selection.anchorNode, "A", area) !== null,
      quote: closest(selection.anchorNode, "BLOCKQUOTE", area) !== null,
    });
  }

  useEffect(() => {
    document.addEventListener("selectionchange", update);
    return () => document.removeEventListener("selectionchange", update);
  }, []);

  function apply(format: Format): void {
    const area = editor.current;
    if (!area) return;
    area.focus();
    const selection = document.getSelection();
    if (format === "link") {
      const existing = closest(selection?.anchorNode ?? null, "A", area);
      if (existing) {
        document.execCommand("unlink");
      } else {
        const target = linkTarget(prompt(t("compose.linkPrompt")) ?? "");
        if (target === null) return;
        area.focus();
        if (!selection || selection.isCollapsed) {
          const text = escapeAttribute(target.replace(/^mailto:/i, ""));
          document.execCommand("insertHTML", false, `<a href="${escapeAttribute(target)}">${text}</a>`);
        } else {
          document.execCommand("createLink", false, target);
        }
      }
    } else if (format === "quote") {
      if (closest(selection?.anchorNode ?? null, "BLOCKQUOTE", area)) document.execCommand("outdent");
      else document.execCommand("formatBlock", false, "blockquote");
    } else {
      document.execCommand(format);
    }
    update();
    onInput();
  }

  function onToolbarKey(event: KeyboardEvent): void {
    // ARIA toolbar pattern: one tab stop, arrows move between the buttons.
    let next = focusIndex;
    if (event.key === "ArrowRight") next = (focusIndex + 1) % BUTTONS.length;
    else if (event.key === "ArrowLeft") next = (focusIndex - 1 + BUTTONS.length) % BUTTONS.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = BUTTONS.length - 1;
    else return;
    event.preventDefault();
    setFocusIndex(next);
    toolbar.current?.querySelectorAll("button")[next]?.focus();
  }

  return (
    <div class="rich">
      <div class="format-bar" role="toolbar" aria-label={t("compose.format")} aria-controls="composer-editor" ref={toolbar} onKeyDown={onToolbarKey}>
        {BUTTONS.map((button, index) => (
          <button
            key={button.format}
            type="button"
            class={`format format-${button.format}`}
            aria-label={t(button.label)}
            title={t(button.label)}
            aria-pressed={pressed[button.format] ?? false}
            aria-keyshortcuts={button.shortcut}
            tabIndex={index === focusIndex ? 0 : -1}
            // Keep the editor's selection: a click on the toolbar must not take the focus.
            onMouseDown={(event) => event.preventDefault()}
            onClick={() => {
              setFocusIndex(index);
              apply(button.format);
            }}
          >
            {button.text || t(button.label)}
          </button>
        ))}
      </div>
      <div
        id="composer-editor"
        ref={editor}
        class="editor"
        role="textbox"
        aria-multiline="true"
        aria-label={t("compose.body")}
        contentEditable
        dangerouslySetInnerHTML={content}
        onInput={() => {
          update();
          onInput();
        }}
        onKeyUp={update}
        onMouseUp={update}
        onKeyDown={(event) => {
          const format = SHORTCUTS[event.key.toLowerCase()];
          if (format && (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey) {
            event.preventDefault();
            apply(format);
          }
        }}
        onPaste={(event) => {
          const data = event.clipboardData;
          if (!data) return;
          event.preventDefault();
          const html = data.getData("text/html");
          if (html) document.execCommand("insertHTML", false, sanitizeComposed(html));
          else document.execCommand("insertText", false, data.getData("text/plain"));
          onInput();
        }}
      />
    </div>
  );
}
