// How a run is shown: a readable table, JSON for machines, and a self-contained HTML page
// with a latency-percentile chart and a throughput-over-time chart per series (inline SVG).
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "stats.hpp"

namespace cairn::load {

void print_table(std::ostream& out, const RunResult& result);
nlohmann::json to_json(const RunResult& result);
std::string to_html(const RunResult& result);

}  // namespace cairn::load
