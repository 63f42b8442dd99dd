// Building the page's DOM from data. Text always goes in as text nodes (never parsed as
// markup): names, metadata and tokens can come from a shared bundle or a file, and are
// untrusted. `innerHTML` is not used anywhere in the page.

/**
 * `h("b", {className: "x"}, "text", child, ...)`: an element with properties and children.
 * Strings and numbers become text nodes; null, undefined and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    // Properties that parse markup, load a resource or run code are not for data.
    if (UNSAFE.has(k) || k.startsWith("on")) throw new Error(`h(): ${k} is not allowed`);
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "href") el.href = safeHref(v);
    else el[k] = v;
  }
  el.append(...flat(children));
  return el;
}

const UNSAFE = new Set(["innerHTML", "outerHTML", "srcdoc", "src", "action", "formAction"]);

/** Replaces an element's content with the given children (text or nodes). */
export function fill(el, ...children) {
  el.replaceChildren(...flat(children));
  return el;
}

/** Bold text, the page's way of highlighting a figure. */
export const b = (text) => h("b", {}, String(text));

function flat(children) {
  return children.flat(Infinity).filter((c) => c != null && c !== false).map((c) => (c instanceof Node ? c : String(c)));
}

/** A link target only for http(s) URLs; anything else (javascript:, data:) becomes "#". */
export function safeHref(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : "#";
  } catch {
    return "#";
  }
}
