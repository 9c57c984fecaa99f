// prom-client hashes the label set on every inc()/observe(); on hot paths we resolve each label
// combination to its child once and keep it. Bounded by the label values' cardinality, which callers keep
// small (route templates, methods, status codes, policy names).
export function cachedChildren<C>(resolve: (...values: string[]) => C): (...values: string[]) => C {
  const children = new Map<string, C>();
  return (...values) => {
    const key = values.join('\u0000');
    let child = children.get(key);
    if (child === undefined) {
      child = resolve(...values);
      children.set(key, child);
    }
    return child;
  };
}
