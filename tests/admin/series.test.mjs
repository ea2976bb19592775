// The inspector's arithmetic (gateway/admin/series.js) under node, on the cases cairnctl's C++
// also passes (tests/data/metrics_math.json), plus the History's windows over readings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseMetrics, increase, bucketIncrease, quantile, sumBy, History } from "../../gateway/admin/series.js";

const cases = JSON.parse(readFileSync(fileURLToPath(new URL("../data/metrics_math.json", import.meta.url)), "utf8"));
const number = (v) => (v === "+Inf" ? Infinity : v);
const pairs = (list) => list.map(([le, count]) => [number(le), count]);

test("the text format is parsed as the shared cases say", () => {
  for (const c of cases.parse) {
    const expected = c.samples.map((s) => ({ ...s, value: number(s.value) }));
    assert.deepEqual(parseMetrics(c.text), expected);
  }
});

test("counter increases count a reset as the value since", () => {
  for (const c of cases.increase) {
    assert.equal(increase(c.values.map((v) => (v === null ? undefined : v))), c.increase, JSON.stringify(c.values));
  }
});

test("bucket increases stay cumulative across a reset", () => {
  for (const c of cases.bucket_increase) {
    assert.deepEqual(bucketIncrease(c.readings.map(pairs)), pairs(c.increase), JSON.stringify(c.readings));
  }
});

test("quantiles interpolate within their bucket", () => {
  for (const c of cases.quantile) {
    const got = quantile(c.q, pairs(c.buckets));
    if (c.value === null) assert.equal(got, null);
    else assert.ok(Math.abs(got - c.value) < 1e-9, `${got} vs ${c.value}`);
  }
});

test("a history gives rates, quantiles and gauges over its readings and forgets old ones", () => {
  const h = new History(10_000);
  const text = (requests, fast, slow, live) => `
cairn_http_requests_total{route="/seats",status="200"} ${requests}
cairn_http_requests_total{route="/seats",status="503"} 1
x_bucket{le="0.01"} ${fast}
x_bucket{le="0.1"} ${fast + slow}
x_bucket{le="+Inf"} ${fast + slow}
cairn_instances{state="live"} ${live}`;
  h.push(0, parseMetrics(text(0, 0, 0, 1)));
  h.push(2000, parseMetrics(text(20, 10, 0, 2)));
  h.push(4000, parseMetrics(text(5, 10, 10, 3)));  // restarted: 5 since
  const ok = (s) => sumBy(s, "cairn_http_requests_total", { status: (v) => v?.startsWith("2") }).get("");
  assert.deepEqual(h.rate(2000, ok), [[2000, 10], [4000, 2.5]]);
  assert.deepEqual(h.rate(4000, ok), [[2000, 10], [4000, 25 / 4]]);
  const p50 = h.quantile(2000, 0.5, "x");
  assert.equal(p50.length, 2);
  assert.ok(Math.abs(p50[0][1] - 0.005) < 1e-12);
  assert.ok(Math.abs(p50[1][1] - 0.055) < 1e-12);  // the 10 slow ones only
  assert.deepEqual(h.gauge((s) => sumBy(s, "cairn_instances", { state: "live" }).get("")), [[0, 1], [2000, 2], [4000, 3]]);
  h.push(20_000, parseMetrics(text(9, 10, 10, 1)));
  assert.deepEqual(h.readings.map((r) => r.t), [20_000]);
  assert.deepEqual(h.rate(2000, ok), []);
});
