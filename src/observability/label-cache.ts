// A metric's series per label combination, resolved once and kept (for the bound series of
// bound-metrics.ts and prom-client's children alike). Bounded by the label values' cardinality, which callers keep
// small (route templates, methods, status codes, policy names).
// One map level per label value, so a lookup builds no key string.
export function cachedChildren<C>(resolve: (...values: string[]) => C): (...values: string[]) => C {
  const root = new Map<string, unknown>();
  return (...values) => {
    let node = root;
    const last = values.length - 1;
    for (let i = 0; i < last; i += 1) {
      let next = node.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(values[i]!, next);
      }
      node = next;
    }
    let child = node.get(values[last]!) as C | undefined;
    if (child === undefined) {
      child = resolve(...values);
      node.set(values[last]!, child);
    }
    return child;
  };
}
