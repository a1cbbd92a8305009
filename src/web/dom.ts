/** A few lines of DOM building so views stay declarative without a framework. */

export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined;
export type Attrs = { [key: string]: AttrValue | ((event: Event) => void) };

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (typeof value === 'function') {
        el.addEventListener(key.replace(/^on/, '').toLowerCase(), value);
      } else if (value === true) {
        el.setAttribute(key, '');
      } else if (value !== false && value !== null && value !== undefined) {
        el.setAttribute(key === 'className' ? 'class' : key, String(value));
      }
    }
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else if (child !== null && child !== undefined && child !== false) {
      parent.appendChild(document.createTextNode(String(child)));
    }
  }
}

/** Replace every child of `parent`. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

export interface Column {
  label: Child;
  /** Right-aligned numbers. */
  num?: boolean;
}

/** The app's table: a caption (hidden when only screen readers need it), column headers, body rows. */
export function dataTable(o: {
  className?: string;
  caption: string;
  captionHidden?: boolean;
  columns: Column[];
  rows: Child[];
  foot?: Child;
}): HTMLTableElement {
  return h(
    'table',
    { class: o.className ? `data-table ${o.className}` : 'data-table' },
    h('caption', o.captionHidden ? { class: 'visually-hidden' } : null, o.caption),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        o.columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)),
      ),
    ),
    h('tbody', null, o.rows),
    o.foot ? h('tfoot', null, o.foot) : null,
  );
}
