/**
 * Building the page without innerHTML: every value reaches the DOM as a text node or an attribute
 * value, so event data (untrusted) can never become markup. Handlers are attached with `on`.
 */

export type Child = Node | string | number | null | undefined | false;

export interface Props {
  className?: string;
  /** Attributes, set with setAttribute (never event handler attributes). */
  attrs?: Record<string, string>;
  /** Event listeners. */
  on?: Partial<Record<keyof HTMLElementEventMap, (event: Event) => void>>;
}

/** An element with its properties and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props?.className !== undefined) element.className = props.className;
  for (const [name, value] of Object.entries(props?.attrs ?? {})) {
    if (/^on/i.test(name)) throw new Error(`refusing the event attribute ${name}`);
    element.setAttribute(name, value);
  }
  for (const [type, listener] of Object.entries(props?.on ?? {})) {
    element.addEventListener(type, listener);
  }
  append(element, ...children);
  return element;
}

/** Appends children: strings and numbers as text nodes. */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces an element's children. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** A link to a route of the console. */
export function link(route: string, params: Record<string, string>, ...children: Child[]): HTMLAnchorElement {
  return h('a', { attrs: { href: routeHref(route, params) } }, ...children);
}

/** "#/stream?path=%2Fa": routes live in the fragment, which browsers never send to the server. */
export function routeHref(route: string, params: Record<string, string> = {}): string {
  const query = new URLSearchParams(params).toString();
  return `#/${route}${query ? `?${query}` : ''}`;
}
