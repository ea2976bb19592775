// The inspector's charts: inline SVG drawn here, about 150 lines, rather than a charting
// package. A package would bring npm and a bundler into the server's build (the page is
// compiled into cairn-server, and the build must work offline from Debian's packages), and
// the page needs only two shapes: lines over time and markers on a timeline.
const svgNs = "http://www.w3.org/2000/svg";
export const palette = ["#1f6fb4", "#d1495b", "#2e9d52", "#e08a1e", "#7b5ea7", "#8c564b", "#c2479b", "#179fb0"];
const width = 440;
const height = 150;
const margin = { left: 56, right: 10, top: 10, bottom: 22 };

function svgElement(name, attributes = {}, text = null) {
  const element = document.createElementNS(svgNs, name);
  for (const [k, v] of Object.entries(attributes)) element.setAttribute(k, String(v));
  if (text !== null) element.textContent = text;
  return element;
}

// A value as people read it, in `unit`: "s" becomes ms or s, "/s" and counts keep 3 digits.
export function formatValue(value, unit = "") {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (unit === "s") {
    if (value === 0) return "0 ms";
    if (value < 1) return `${Number((value * 1000).toPrecision(3))} ms`;
    return `${Number(value.toPrecision(3))} s`;
  }
  const abs = Math.abs(value);
  const text = abs >= 1e6 ? `${Number((value / 1e6).toPrecision(3))}M`
             : abs >= 1e4 ? `${Number((value / 1e3).toPrecision(3))}k`
             : abs >= 100 || Number.isInteger(value) ? String(Math.round(value))
             : String(Number(value.toPrecision(3)));
  return unit ? `${text} ${unit}` : text;
}

// A round number at or above `max` (1, 2 or 5 times a power of ten).
export function niceCeiling(max) {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

const clockTime = (t) => new Date(t).toLocaleTimeString([], { hour12: false });

// A figure: title, the latest value of each series in its colour, and the lines over
// [start, end] (ms). series: [{name, points: [[t, value]], color?}]. The svg carries
// data-points (how many points it drew) for tests and for screen readers' summaries.
export function lineChart({ id, title, unit = "", series, start, end, note = "" }) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  if (id) figure.id = id;
  const caption = document.createElement("figcaption");
  const heading = document.createElement("strong");
  heading.textContent = title;
  caption.append(heading);
  const legend = document.createElement("span");
  legend.className = "legend";
  series.forEach((s, i) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = s.color ?? palette[i % palette.length];
    const last = s.points.length > 0 ? s.points[s.points.length - 1][1] : null;
    item.append(swatch, `${s.name} ${formatValue(last, unit)}`);
    item.dataset.value = last === null ? "" : String(last);
    legend.append(item);
  });
  caption.append(legend);
  figure.append(caption);

  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const span = Math.max(1, end - start);
  let max = 0;
  let drawn = 0;
  for (const s of series) for (const [t, v] of s.points) if (t >= start && v > max) max = v;
  const top = niceCeiling(max);
  const x = (t) => margin.left + ((t - start) / span) * plotW;
  const y = (v) => margin.top + plotH - (Math.max(0, v) / top) * plotH;
  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction;
    svg.append(svgElement("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value), class: "grid" }));
    svg.append(svgElement("text", { x: margin.left - 4, y: y(value) + 4, "text-anchor": "end", class: "axis" },
                          formatValue(value, unit)));
  }
  svg.append(svgElement("text", { x: margin.left, y: height - 6, class: "axis" }, clockTime(start)));
  svg.append(svgElement("text", { x: width - margin.right, y: height - 6, "text-anchor": "end", class: "axis" }, clockTime(end)));
  series.forEach((s, i) => {
    const visible = s.points.filter(([t]) => t >= start);
    if (visible.length === 0) return;
    drawn += visible.length;
    const color = s.color ?? palette[i % palette.length];
    if (visible.length === 1) {
      svg.append(svgElement("circle", { cx: x(visible[0][0]), cy: y(visible[0][1]), r: 2.5, fill: color }));
    } else {
      svg.append(svgElement("polyline", {
        points: visible.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" "),
        fill: "none", stroke: color, "stroke-width": 1.6, "stroke-linejoin": "round",
      }));
    }
  });
  if (drawn === 0) {
    svg.append(svgElement("text", { x: margin.left + plotW / 2, y: margin.top + plotH / 2, "text-anchor": "middle", class: "empty" },
                          "no data yet"));
  }
  svg.dataset.points = String(drawn);
  svg.setAttribute("aria-label", `${title}: ${legend.textContent || "no data"}`);
  figure.append(svg);
  if (note) {
    const small = document.createElement("small");
    small.textContent = note;
    figure.append(small);
  }
  return figure;
}

// A timeline from `start` to `end` (ms) with a marker per item [{t, label, late?}]: an
// actor's alarms against the runtime's clock (`now` drawn as a line).
export function timeline({ id, items, now, start, end }) {
  const svg = svgElement("svg", { viewBox: `0 0 ${width} 70`, role: "img", class: "timeline" });
  if (id) svg.id = id;
  const plotW = width - margin.left - margin.right;
  const span = Math.max(1, end - start);
  const x = (t) => margin.left + ((Math.min(Math.max(t, start), end) - start) / span) * plotW;
  svg.append(svgElement("line", { x1: margin.left, x2: width - margin.right, y1: 40, y2: 40, class: "grid" }));
  svg.append(svgElement("line", { x1: x(now), x2: x(now), y1: 28, y2: 52, class: "now" }));
  svg.append(svgElement("text", { x: x(now), y: 64, "text-anchor": "middle", class: "axis" }, "now"));
  svg.append(svgElement("text", { x: width - margin.right, y: 64, "text-anchor": "end", class: "axis" }, relative(end - now)));
  items.forEach((item, i) => {
    const cx = x(item.t);
    const marker = svgElement("circle", { cx, cy: 40, r: 5, class: item.late ? "alarm late" : "alarm" });
    marker.append(svgElement("title", {}, `${item.label}: ${new Date(item.t).toISOString()}`));
    svg.append(marker);
    svg.append(svgElement("text", { x: cx, y: i % 2 === 0 ? 24 : 16, "text-anchor": "middle", class: "axis" },
                          `${item.label} ${relative(item.t - now)}`));
  });
  svg.dataset.points = String(items.length);
  svg.setAttribute("aria-label", items.map((item) => `${item.label} ${relative(item.t - now)}`).join(", ") || "no alarms");
  return svg;
}

// "in 4m 10s", "2s ago".
export function relative(ms) {
  const seconds = Math.round(Math.abs(ms) / 1000);
  const text = seconds >= 3600 ? `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`
             : seconds >= 60 ? `${Math.floor(seconds / 60)}m ${seconds % 60}s`
             : `${seconds}s`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}
