import type { Ref } from "preact";
import { useState } from "preact/hooks";

import { people } from "../app/state";
import { t } from "../i18n";
import { currentToken, parseAddresses } from "../mail/compose";
import { type Person, formatPerson, suggest } from "../mail/people";

let fields = 0;

/**
 * An address field with completion from the user's contacts and the domain directory
 * (ARIA 1.2 combobox with a listbox popup, list autocomplete with automatic selection):
 * Up/Down move in the suggestions, Enter takes one, Escape closes them. Works offline
 * from the local copy of contacts and directory.
 */
export function AddressField({
  label,
  value,
  onChange,
  inputRef,
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  inputRef?: Ref<HTMLInputElement>;
}) {
  const [id] = useState(() => `address-${++fields}`);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const { before, token } = currentToken(value);
  // Nothing to suggest for an empty token or a finished "Name <address>".
  const suggestions: Person[] =
    open && token.trim() !== "" && !token.includes(">")
      ? suggest(token, people.value, { exclude: parseAddresses(before).map((a) => a.email) })
      : [];
  const shown = suggestions.length > 0;
  const activeIndex = Math.min(active, suggestions.length - 1);

  function choose(person: Person, input: HTMLInputElement | null): void {
    const prefix = before.trim() === "" ? "" : `${before.trimEnd()} `;
    const next = `${prefix}${formatPerson(person)}, `;
    onChange(next);
    setOpen(false);
    setActive(0);
    if (input) {
      input.value = next;
      input.setSelectionRange(next.length, next.length);
      input.focus();
    }
  }

  return (
    <div class="address-field">
      <label>
        {label}
        <input
          ref={inputRef}
          value={value}
          role="combobox"
          aria-autocomplete="list"
          aria-expanded={shown}
          aria-controls={`${id}-list`}
          aria-activedescendant={shown ? `${id}-option-${activeIndex}` : undefined}
          autocomplete="off"
          spellcheck={false}
          onInput={(event) => {
            onChange(event.currentTarget.value);
            setOpen(true);
            setActive(0);
          }}
          onBlur={() => setOpen(false)}
          onKeyDown={(event) => {
            if (event.key === "ArrowDown") {
              event.preventDefault();
              if (!open) setOpen(true);
              else if (shown) setActive((activeIndex + 1) % suggestions.length);
            } else if (event.key === "ArrowUp" && shown) {
              event.preventDefault();
              setActive((activeIndex - 1 + suggestions.length) % suggestions.length);
            } else if (event.key === "Enter" && shown && !event.ctrlKey && !event.metaKey) {
              event.preventDefault();
              const person = suggestions[activeIndex];
              if (person) choose(person, event.currentTarget);
            } else if (event.key === "Escape" && shown) {
              // Close the suggestions, not the composer.
              event.preventDefault();
              event.stopPropagation();
              setOpen(false);
            }
          }}
        />
      </label>
      <ul id={`${id}-list`} role="listbox" aria-label={t("compose.suggestions")} class="suggestions" hidden={!shown}>
        {suggestions.map((person, index) => (
          <li
            key={person.email}
            id={`${id}-option-${index}`}
            role="option"
            aria-selected={index === activeIndex}
            class={index === activeIndex ? "active" : ""}
            // Keep the focus in the field: the click chooses, the field stays where it was.
            onMouseDown={(event) => event.preventDefault()}
            onClick={(event) => {
              const input = (event.currentTarget.closest(".address-field")?.querySelector("input") ?? null) as HTMLInputElement | null;
              choose(person, input);
            }}
          >
            <span class="person">{formatPerson(person)}</span>{" "}
            <span class="source">{person.source === "contact" ? t("compose.fromContacts") : t("compose.fromDirectory")}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}
