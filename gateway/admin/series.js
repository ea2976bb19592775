// The inspector's arithmetic on /metrics samples kept in the browser: the Prometheus text
// format parsed, counters turned into increases and rates (a value lower than the one before
// is a reset, a restarted server: what it holds is the increase since), and quantiles of a
// histogram's observations between two moments, interpolated within a bucket as Prometheus'
// histogram_quantile does. No DOM here: tests/admin runs these under node with the same
// cases (tests/data/metrics_math.json) that cairnctl's C++ (cli/metrics_math.hpp) passes.

// [{name, labels: {label: value}, value}] of every sample line; comments and blank lines are
// skipped, and so is a line that is not a sample.
export function parseMetrics(text) {
  const samples = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const sample = parseLine(line);
    if (sample) samples.push(sample);
  }
  return samples;
}

function parseLine(line) {
  const nameEnd = line.search(/[{\s]/);
  if (nameEnd <= 0) return null;
  const name = line.slice(0, nameEnd);
  const labels = {};
  let rest = line.slice(nameEnd);
  if (rest.startsWith("{")) {
    let i = 1;
    for (;;) {
      while (rest[i] === " " || rest[i] === ",") i++;
      if (rest[i] === "}") { i++; break; }
      const eq = rest.indexOf("=", i);
      if (eq < 0 || rest[eq + 1] !== '"') return null;
      const label = rest.slice(i, eq).trim();
      let value = "";
      let j = eq + 2;
      for (; j < rest.length && rest[j] !== '"'; j++) {
        if (rest[j] === "\\" && j + 1 < rest.length) {
          j++;
          value += rest[j] === "n" ? "\n" : rest[j];
        } else {
          value += rest[j];
        }
      }
      if (j >= rest.length) return null;
      labels[label] = value;
      i = j + 1;
    }
    rest = rest.slice(i);
  }
  const fields = rest.trim().split(/\s+/);
  const value = parseValue(fields[0]);
  if (value === null) return null;
  return { name, labels, value };
}

function parseValue(text) {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (text === undefined || text === "" || !/^[-+0-9.eE]+$/.test(text)) return null;
  const value = Number(text);
  return Number.isNaN(value) ? null : value;
}

// Whether a sample's labels hold every label of `match` (each a value, or a function of it).
export function matches(labels, match = {}) {
  for (const [label, want] of Object.entries(match)) {
    const have = labels[label];
    if (typeof want === "function" ? !want(have) : have !== want) return false;
  }
  return true;
}

// The sum of the samples of `name` that match, by the value of label `by` (a Map; one entry
// under "" without `by`).
export function sumBy(samples, name, match = {}, by = null) {
  const sums = new Map();
  for (const s of samples) {
    if (s.name !== name || !matches(s.labels, match)) continue;
    const key = by ? (typeof by === "function" ? by(s.labels) : s.labels[by] ?? "") : "";
    sums.set(key, (sums.get(key) ?? 0) + s.value);
  }
  return sums;
}

// How much a counter grew over consecutive readings `values` (undefined: not there yet). A
// reading lower than the one before is a reset: it is the increase since.
export function increase(values) {
  let total = 0;
  let before;
  for (const v of values) {
    if (v === undefined || Number.isNaN(v)) continue;
    if (before !== undefined) total += v >= before ? v - before : v;
    before = v;
  }
  return total;
}

// A histogram's cumulative bucket counts, summed over the matching series: [[le, count]]
// by le (+Inf last).
export function buckets(samples, name, match = {}) {
  const byLe = sumBy(samples, `${name}_bucket`, match, "le");
  return [...byLe.entries()]
    .map(([le, count]) => [le === "+Inf" || le === "Inf" ? Infinity : le === "" ? NaN : Number(le), count])
    .filter(([le]) => !Number.isNaN(le))
    .sort((a, b) => a[0] - b[0]);
}

// The increase of each bucket over consecutive readings (each [[le, count]]), made
// cumulative again (a reset in the middle must not make a bucket hold less than the one
// below it).
export function bucketIncrease(readings) {
  const les = new Set();
  for (const r of readings) for (const [le] of r) les.add(le);
  const sorted = [...les].sort((a, b) => a - b);
  let floor = 0;
  return sorted.map((le) => {
    const got = increase(readings.map((r) => r.find(([l]) => l === le)?.[1]));
    floor = Math.max(floor, got);
    return [le, floor];
  });
}

// The q quantile (0..1) of the observations counted in cumulative buckets `counts`
// ([[le, count]] by le): linear within the bucket that holds it, the highest finite bound if
// it is past them all; null if there are none.
export function quantile(q, counts) {
  if (counts.length === 0) return null;
  const total = counts[counts.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const [le, count] of counts) {
    if (count >= rank) {
      if (le === Infinity) return lowerLe;
      if (count === lowerCount) return le;
      return lowerLe + (le - lowerLe) * (rank - lowerCount) / (count - lowerCount);
    }
    lowerLe = le;
    lowerCount = count;
  }
  return lowerLe;
}

// Readings of /metrics over time: each {t (ms), samples}. Keeps the last `keepMs`.
export class History {
  constructor(keepMs = 15 * 60 * 1000) {
    this.keepMs = keepMs;
    this.readings = [];
  }
  push(t, samples) {
    this.readings.push({ t, samples });
    while (this.readings.length > 0 && this.readings[0].t < t - this.keepMs) this.readings.shift();
  }
  // Points [t, value] of `fn(readings)` over each reading and those of the `windowMs` before
  // it (at least two readings; fn may return null: no point).
  windowed(windowMs, fn) {
    const points = [];
    let from = 0;
    for (let i = 1; i < this.readings.length; i++) {
      const t = this.readings[i].t;
      while (from < i - 1 && this.readings[from].t < t - windowMs) from++;
      const value = fn(this.readings.slice(from, i + 1));
      if (value !== null && value !== undefined && Number.isFinite(value)) points.push([t, value]);
    }
    return points;
  }
  // Per second over the window: the increase of the counter sum fn(samples) gives.
  rate(windowMs, valueOf) {
    return this.windowed(windowMs, (rs) => {
      const seconds = (rs[rs.length - 1].t - rs[0].t) / 1000;
      return seconds > 0 ? increase(rs.map((r) => valueOf(r.samples))) / seconds : null;
    });
  }
  // The q quantile over the window of histogram `name`'s matching series.
  quantile(windowMs, q, name, match = {}) {
    return this.windowed(windowMs, (rs) => quantile(q, bucketIncrease(rs.map((r) => buckets(r.samples, name, match)))));
  }
  // The value fn(samples) at each reading (gauges).
  gauge(valueOf) {
    const points = [];
    for (const r of this.readings) {
      const v = valueOf(r.samples);
      if (v !== undefined && v !== null && Number.isFinite(v)) points.push([r.t, v]);
    }
    return points;
  }
}
