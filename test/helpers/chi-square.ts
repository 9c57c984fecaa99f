// Pearson's chi-square test for the statistical tests of the random generators: the statistic, the upper
// tail of the chi-square distribution, and critical values computed from it (no hard-coded tables).
//
// The upper tail is the regularized upper incomplete gamma function, P(X > x) = Q(k/2, x/2) for k degrees of
// freedom, evaluated as in Numerical Recipes (3rd ed., §6.1-6.2): ln Γ by Lanczos' approximation, then the
// series for P(a, x) when x < a + 1 and the continued fraction for Q(a, x) (modified Lentz) otherwise.
// The test suite checks these functions against textbook and scipy values.

const EPS = 1e-15;
const FPMIN = 2.2250738585072014e-308 / EPS; // smallest normal double / EPS, as in Numerical Recipes
const MAX_ITERATIONS = 10_000;

// Numerical Recipes' 14 coefficients (g = 671/128), written to the 17 significant digits a double holds.
const LANCZOS = [
  57.15623566586292, -59.59796035547549, 14.136097974741746, -0.4919138160976202, 3.399464998481189e-5,
  4.652362892704858e-5, -9.837447530487956e-5, 1.580887032249125e-4, -2.1026444172410488e-4,
  2.1743961811521265e-4, -1.643181065367639e-4, 8.441822398385275e-5, -2.6190838401581408e-5,
  3.6899182659531625e-6,
];

/** ln Γ(x) for x > 0 (Numerical Recipes' `gammln`, relative error below 1e-15). */
export function lnGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`lnGamma needs x > 0, got ${x}`);
  let y = x;
  let tmp = x + 5.2421875;
  tmp = (x + 0.5) * Math.log(tmp) - tmp;
  let series = 0.9999999999999971;
  for (const c of LANCZOS) series += c / ++y;
  return tmp + Math.log((2.5066282746310007 * series) / x);
}

/** The regularized lower incomplete gamma P(a, x) by its series; converges quickly for x < a + 1. */
function lowerGammaSeries(a: number, x: number): number {
  let ap = a;
  let term = 1 / a;
  let sum = term;
  for (let i = 0; i < MAX_ITERATIONS; i++) {
    ap += 1;
    term *= x / ap;
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPS) return sum * Math.exp(-x + a * Math.log(x) - lnGamma(a));
  }
  throw new Error(`incomplete gamma series did not converge for a=${a}, x=${x}`);
}

/** The regularized upper incomplete gamma Q(a, x) by its continued fraction; for x >= a + 1. */
function upperGammaContinuedFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / FPMIN;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i <= MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = b + an / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) <= EPS) return Math.exp(-x + a * Math.log(x) - lnGamma(a)) * h;
  }
  throw new Error(`incomplete gamma continued fraction did not converge for a=${a}, x=${x}`);
}

/** Q(a, x) = Γ(a, x) / Γ(a), the regularized upper incomplete gamma function. */
export function regularizedUpperGamma(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0))
    throw new RangeError(`regularizedUpperGamma needs a > 0, x >= 0 (a=${a}, x=${x})`);
  if (x === 0) return 1;
  return x < a + 1 ? 1 - lowerGammaSeries(a, x) : upperGammaContinuedFraction(a, x);
}

/** P(X > x) for X ~ chi-square with `df` degrees of freedom (scipy's `chi2.sf`). */
export function chiSquareSurvival(x: number, df: number): number {
  return regularizedUpperGamma(df / 2, x / 2);
}

/**
 * The critical value c with P(X > c) = alpha for X ~ chi-square(df) (scipy's `chi2.isf`), by bisection on
 * the survival function, which falls strictly from 1 to 0.
 */
export function chiSquareCritical(alpha: number, df: number): number {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must lie in (0, 1), got ${alpha}`);
  let lo = 0;
  let hi = Math.max(1, df);
  while (chiSquareSurvival(hi, df) > alpha) {
    lo = hi;
    hi *= 2;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (chiSquareSurvival(mid, df) > alpha) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Pearson's statistic: the sum over cells of (observed - expected)^2 / expected. */
export function chiSquareStatistic(observed: readonly number[], expected: readonly number[]): number {
  if (observed.length !== expected.length) throw new RangeError('observed and expected differ in length');
  let sum = 0;
  for (let i = 0; i < observed.length; i++) {
    const e = expected[i] as number;
    const diff = (observed[i] as number) - e;
    sum += (diff * diff) / e;
  }
  return sum;
}

/** Pearson's statistic against the uniform distribution: every cell expects total / cells. */
export function chiSquareUniformStatistic(counts: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  return chiSquareStatistic(counts, new Array<number>(counts.length).fill(total / counts.length));
}
