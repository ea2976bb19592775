#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace cairn::load {

namespace {

std::string ms(double v) { return v >= 100 ? fmt::format("{:.0f} ms", v) : fmt::format("{:.2f} ms", v); }

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A line chart: points (x, y) in data units, x on a linear or "percentile" scale
// (-log10(1 - p/100), so the tail gets room), y from 0 to the largest value.
std::string svg_chart(const std::string& title, const std::vector<std::pair<double, double>>& points,
                      const std::string& x_label, const std::string& y_label, bool percentile_x) {
  const double w = 560, h = 240, left = 64, right = 16, top = 28, bottom = 40;
  auto fx = [&](double x) { return percentile_x ? -std::log10(std::max(1e-5, 1 - std::min(x, 99.999) / 100)) : x; };
  double xmin = 0, xmax = 1, ymax = 0;
  if (!points.empty()) {
    xmin = fx(points.front().first);
    xmax = fx(points.back().first);
    for (const auto& p : points) ymax = std::max(ymax, p.second);
  }
  if (xmax <= xmin) xmax = xmin + 1;
  if (ymax <= 0) ymax = 1;
  ymax *= 1.1;
  auto px = [&](double x) { return left + (fx(x) - xmin) / (xmax - xmin) * (w - left - right); };
  auto py = [&](double y) { return top + (1 - y / ymax) * (h - top - bottom); };
  std::string svg = fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img">)", w, h, w, h);
  svg += fmt::format(R"(<text x="{}" y="18" font-size="13" font-weight="bold">{}</text>)", left, html_escape(title));
  svg += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#999"/><line x1="{0}" y1="{2}" x2="{3}" y2="{2}" stroke="#999"/>)",
                     left, top, h - bottom, w - right);
  for (int i = 0; i <= 4; ++i) {
    double y = ymax * i / 4;
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="10" text-anchor="end">{:.3g}</text><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#eee"/>)",
                       left - 4, py(y) + 3, y, left, py(y), w - right, py(y));
  }
  if (percentile_x) {
    for (double p : {0.0, 90.0, 99.0, 99.9, 99.99}) {
      if (points.empty() || fx(p) > xmax + 1e-9) continue;
      svg += fmt::format(R"(<text x="{}" y="{}" font-size="10" text-anchor="middle">p{}</text>)", px(p), h - bottom + 14, p);
    }
  } else if (!points.empty()) {
    for (int i = 0; i <= 4; ++i) {
      double x = points.front().first + (points.back().first - points.front().first) * i / 4;
      svg += fmt::format(R"(<text x="{}" y="{}" font-size="10" text-anchor="middle">{:.3g}</text>)", px(x), h - bottom + 14, x);
    }
  }
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>)", (left + w - right) / 2, h - 6, html_escape(x_label));
  svg += fmt::format(R"~(<text x="12" y="{}" font-size="11" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>)~",
                     (top + h - bottom) / 2, (top + h - bottom) / 2, html_escape(y_label));
  std::string path;
  for (const auto& p : points) path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", px(p.first), py(p.second));
  if (!path.empty()) svg += fmt::format(R"(<path d="{}" fill="none" stroke="#2a6fdb" stroke-width="2"/>)", path);
  for (const auto& p : points) svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="#2a6fdb"/>)", px(p.first), py(p.second));
  return svg + "</svg>";
}

}  // namespace

void print_table(std::ostream& out, const RunResult& r) {
  out << fmt::format("cairn-load {}: {:.1f} s measured, {}\n", r.scenario, r.seconds, r.parameters.dump());
  out << fmt::format("{:<52} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "series", "count", "rate/s", "p50",
                     "p90", "p99", "p99.9", "max");
  for (const auto& [name, s] : r.series) {
    out << fmt::format("{:<52} {:>9} {:>10.0f} {:>10} {:>10} {:>10} {:>10} {:>10}\n", name, s.count, s.rate, ms(s.p50),
                       ms(s.p90), ms(s.p99), ms(s.p999), ms(s.max));
  }
  for (const auto& [kind, n] : r.expected) out << fmt::format("expected: {} x{}\n", kind, n);
  for (const auto& [kind, n] : r.errors) out << fmt::format("error: {} x{}\n", kind, n);
  for (const auto& [key, value] : r.extra.items()) out << fmt::format("{}: {}\n", key, value.dump());
  out << fmt::format("cpu over the whole run ({:.1f} s): harness {:.2f} s ({:.0f}% of a core)", r.wall_seconds,
                     r.harness_cpu_seconds, r.wall_seconds > 0 ? 100 * r.harness_cpu_seconds / r.wall_seconds : 0.0);
  if (r.server_cpu_seconds >= 0) {
    out << fmt::format(", server {:.2f} s ({:.0f}% of a core)", r.server_cpu_seconds,
                       r.wall_seconds > 0 ? 100 * r.server_cpu_seconds / r.wall_seconds : 0.0);
  }
  out << "\n";
  for (const auto& c : r.checks) out << fmt::format("check {}: {}: {}\n", c.passed ? "PASS" : "FAIL", c.name, c.detail);
  out << (r.passed() ? "result: PASS\n" : "result: FAIL\n");
}

nlohmann::json to_json(const RunResult& r) {
  nlohmann::json series = nlohmann::json::object();
  for (const auto& [name, s] : r.series) {
    series[name] = {{"count", s.count}, {"rate_per_s", s.rate}, {"mean_ms", s.mean}, {"p50_ms", s.p50},
                    {"p90_ms", s.p90},  {"p99_ms", s.p99},      {"p999_ms", s.p999}, {"max_ms", s.max},
                    {"per_second", s.per_second}};
  }
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : r.checks) checks.push_back({{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}});
  return {{"scenario", r.scenario},
          {"parameters", r.parameters},
          {"seconds", r.seconds},
          {"series", series},
          {"errors", r.errors},
          {"expected", r.expected},
          {"extra", r.extra},
          {"checks", checks},
          {"passed", r.passed()},
          {"cpu", {{"wall_seconds", r.wall_seconds},
                   {"harness_seconds", r.harness_cpu_seconds},
                   {"server_seconds", r.server_cpu_seconds >= 0 ? nlohmann::json(r.server_cpu_seconds) : nlohmann::json()}}}};
}

std::string to_html(const RunResult& r) {
  std::string html = R"(<!doctype html><html lang="en"><head><meta charset="utf-8"><title>cairn-load )" +
                     html_escape(r.scenario) + R"(</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.pass{color:#17702a}.fail{color:#b00020;font-weight:bold}.charts{display:flex;flex-wrap:wrap;gap:16px}pre{white-space:pre-wrap}</style>
</head><body>)";
  html += "<h1>cairn-load " + html_escape(r.scenario) + (r.passed() ? R"( <span class="pass">PASS</span>)" : R"( <span class="fail">FAIL</span>)") + "</h1>";
  html += "<p>" + fmt::format("{:.1f}", r.seconds) + " s measured. Parameters: <code>" + html_escape(r.parameters.dump()) + "</code></p>";
  html += "<table><tr><th>series</th><th>count</th><th>rate/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>";
  for (const auto& [name, s] : r.series) {
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{:.0f}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        html_escape(name), s.count, s.rate, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.p999), ms(s.max));
  }
  html += "</table><h2>Checks</h2><ul>";
  for (const auto& c : r.checks) {
    html += std::string("<li class=\"") + (c.passed ? "pass" : "fail") + "\">" + (c.passed ? "PASS " : "FAIL ") +
            html_escape(c.name) + ": <pre>" + html_escape(c.detail) + "</pre></li>";
  }
  html += "</ul>";
  if (!r.errors.empty() || !r.expected.empty()) {
    html += "<h2>Errors and expected outcomes</h2><ul>";
    for (const auto& [k, n] : r.errors) html += "<li class=\"fail\">" + html_escape(k) + " x" + std::to_string(n) + "</li>";
    for (const auto& [k, n] : r.expected) html += "<li>" + html_escape(k) + " x" + std::to_string(n) + " (expected)</li>";
    html += "</ul>";
  }
  for (const auto& [name, s] : r.series) {
    html += "<h2>" + html_escape(name) + "</h2><div class=\"charts\">";
    html += svg_chart("latency by percentile", s.curve, "percentile", "ms", true);
    std::vector<std::pair<double, double>> rate;
    for (std::size_t i = 0; i < s.per_second.size(); ++i) rate.emplace_back(static_cast<double>(i), static_cast<double>(s.per_second[i]));
    html += svg_chart("completions per second", rate, "second of the run", "per second", false);
    html += "</div>";
  }
  html += "<h2>Raw</h2><pre>" + html_escape(to_json(r).dump(2)) + "</pre></body></html>\n";
  return html;
}

}  // namespace cairn::load
