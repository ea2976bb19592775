// cairnctl top (top.hpp).
#include "top.hpp"

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/cli/metrics_math.hpp"

namespace cairn::ctl {
namespace {

namespace m = cairn::cli::metrics;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

volatile std::sig_atomic_t interrupted = 0;  // the signal that asks it to end
volatile std::sig_atomic_t suspend = 0;      // Ctrl-Z: give the terminal back, then stop
extern "C" void on_interrupt(int signal) { interrupted = signal; }
extern "C" void on_suspend(int) { suspend = 1; }

// Text from the server as the terminal should show it: control characters (C0, DEL, and C1
// in UTF-8) escaped, so an actor's name cannot move the cursor or talk to the terminal.
std::string printable(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    bool c1 = c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
              static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if (c < 0x20 || c == 0x7F || c1) {
      unsigned code = c1 ? static_cast<unsigned char>(text[++i]) : c;
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02x", code);
      out += buffer;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// What a frame needs from one reading of /metrics.
struct Reading {
  steady::time_point at;
  std::map<std::string, double> routes, statuses;
  std::optional<double> events, commits, live, hibernated, websockets, connections, fds, max_fds;
  m::Buckets http, commit;
};

std::optional<double> one(const std::vector<m::Sample>& samples, const char* name, const m::Match& match = {}) {
  auto sums = m::sum_by(samples, name, match);
  if (sums.empty()) return std::nullopt;
  return sums.begin()->second;
}

Reading extract(const std::string& text) {
  auto samples = m::parse(text);
  m::Match pub{{"listener", m::is("public")}};
  Reading r;
  r.at = steady::now();
  r.routes = m::sum_by(samples, "cairn_http_requests_total", pub, "route");
  r.statuses = m::sum_by(samples, "cairn_http_requests_total", pub, "status");
  r.events = one(samples, "cairn_events_total");
  r.commits = one(samples, "cairn_commits_total");
  r.live = one(samples, "cairn_instances", {{"state", m::is("live")}});
  r.hibernated = one(samples, "cairn_instances", {{"state", m::is("hibernated")}});
  r.websockets = one(samples, "cairn_websockets");
  r.connections = one(samples, "cairn_http_connections", pub);
  r.fds = one(samples, "process_open_fds");
  r.max_fds = one(samples, "process_max_fds");
  r.http = m::buckets(samples, "cairn_http_request_duration_seconds", pub);
  r.commit = m::buckets(samples, "cairn_commit_duration_seconds");
  return r;
}

// The readings of the last `window` (at least the last two).
std::vector<const Reading*> recent(const std::deque<Reading>& readings, steady::duration window) {
  std::vector<const Reading*> out;
  if (readings.size() < 2) return out;
  auto newest = readings.back().at;
  std::size_t from = readings.size() - 2;
  while (from > 0 && newest - readings[from - 1].at <= window) --from;
  for (std::size_t i = from; i < readings.size(); ++i) out.push_back(&readings[i]);
  return out;
}

template <class F>
std::optional<double> rate(const std::vector<const Reading*>& rs, F value_of) {
  if (rs.size() < 2) return std::nullopt;
  double seconds = std::chrono::duration<double>(rs.back()->at - rs.front()->at).count();
  if (seconds <= 0) return std::nullopt;
  std::vector<std::optional<double>> values;
  for (const auto* r : rs) values.push_back(value_of(*r));
  return m::increase(values) / seconds;
}

template <class F>
std::optional<double> quantile(const std::vector<const Reading*>& rs, double q, F buckets_of) {
  if (rs.size() < 2) return std::nullopt;
  std::vector<m::Buckets> readings;
  for (const auto* r : rs) readings.push_back(buckets_of(*r));
  return m::quantile(q, m::bucket_increase(readings));
}

std::string number(std::optional<double> v, int precision = 1) {
  if (!v) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", precision, *v);
  return buffer;
}

std::string seconds_text(std::optional<double> v) {
  if (!v) return "-";
  char buffer[64];
  if (*v < 1) std::snprintf(buffer, sizeof buffer, "%.2f ms", *v * 1000);
  else std::snprintf(buffer, sizeof buffer, "%.2f s", *v);
  return buffer;
}

std::string ms_text(double ms) { return seconds_text(ms / 1000); }

// Rows under headers, each column as wide as its widest cell, numbers after the first column
// right-aligned.
void table(std::ostringstream& out, const std::vector<std::string>& headers,
           const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) width[i] = headers[i].size();
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      std::string pad(width[i] - cells[i].size(), ' ');
      text += i == 0 ? cells[i] + pad : pad + cells[i];
      if (i + 1 < cells.size()) text += "  ";
    }
    out << text << '\n';
  };
  line(headers);
  for (const auto& row : rows) line(row);
}

std::string frame(const TopOptions& options, const std::deque<Reading>& readings, const json& top,
                  const std::string& problem) {
  auto rate_window = std::max<steady::duration>(std::chrono::seconds(6), 2 * options.interval);
  auto latency_window = std::max<steady::duration>(std::chrono::seconds(10), 2 * options.interval);
  auto rs = recent(readings, rate_window);
  auto ls = recent(readings, latency_window);
  std::ostringstream out;
  std::time_t now = std::time(nullptr);
  char clock[16];
  std::strftime(clock, sizeof clock, "%H:%M:%S", std::localtime(&now));
  out << "cairn top  " << options.url << "  " << clock << "  every "
      << number(std::chrono::duration<double>(options.interval).count(), 1) << " s"
      << (isatty(STDIN_FILENO) ? "  (q quits)" : "") << "\n";
  if (!problem.empty()) out << "last reading failed (retrying): " << printable(problem) << "\n";
  out << "\n";

  auto status_rate = [&](auto accept) {
    return rate(rs, [&](const Reading& r) {
      double sum = 0;
      for (const auto& [status, n] : r.statuses) {
        if (accept(status)) sum += n;
      }
      return std::optional<double>(sum);
    });
  };
  auto cls = [](char c) { return [c](const std::string& s) { return !s.empty() && s[0] == c; }; };
  auto exactly = [](const char* code) { return [code](const std::string& s) { return s == code; }; };
  table(out, {"REQUESTS/s", "all", "2xx", "4xx", "5xx", "429", "503", "504", "p50", "p99"},
        {{"public", number(status_rate([](const std::string&) { return true; })), number(status_rate(cls('2'))),
          number(status_rate(cls('4'))), number(status_rate(cls('5'))), number(status_rate(exactly("429"))),
          number(status_rate(exactly("503"))), number(status_rate(exactly("504"))),
          seconds_text(quantile(ls, 0.5, [](const Reading& r) { return r.http; })),
          seconds_text(quantile(ls, 0.99, [](const Reading& r) { return r.http; }))}});
  out << '\n';
  auto events = rate(rs, [](const Reading& r) { return r.events; });
  auto commits = rate(rs, [](const Reading& r) { return r.commits; });
  std::optional<double> per_commit;
  if (events && commits && *commits > 0) per_commit = *events / *commits;
  table(out, {"DURABLE", "events/s", "commits/s", "events/commit", "commit p50", "commit p99"},
        {{"", number(events), number(commits), number(per_commit, 2),
          seconds_text(quantile(ls, 0.5, [](const Reading& r) { return r.commit; })),
          seconds_text(quantile(ls, 0.99, [](const Reading& r) { return r.commit; }))}});
  out << '\n';
  const Reading* last = readings.empty() ? nullptr : &readings.back();
  auto gauge = [&](std::optional<double> Reading::*field) { return last ? number(last->*field, 0) : std::string("-"); };
  table(out, {"NOW", "live", "hibernated", "websockets", "connections", "fds", "fd limit"},
        {{"", gauge(&Reading::live), gauge(&Reading::hibernated), gauge(&Reading::websockets),
          gauge(&Reading::connections), gauge(&Reading::fds), gauge(&Reading::max_fds)}});
  out << '\n';

  // Routes by rate, the busiest first.
  std::vector<std::pair<double, std::string>> routes;
  if (last) {
    for (const auto& [route, n] : last->routes) {
      auto r = rate(rs, [&route = route](const Reading& x) {
        auto it = x.routes.find(route);
        return it == x.routes.end() ? std::nullopt : std::optional<double>(it->second);
      });
      if (r && *r > 0) routes.emplace_back(*r, route);
    }
  }
  std::sort(routes.begin(), routes.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::vector<std::string>> route_rows;
  for (std::size_t i = 0; i < routes.size() && i < 8; ++i) {
    route_rows.push_back({printable(routes[i].second), number(routes[i].first)});
  }
  if (route_rows.empty()) route_rows.push_back({"(none)", "-"});
  table(out, {"ROUTE", "req/s"}, route_rows);
  out << '\n';

  auto actors = [&](const char* title, const char* key) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& a : top.value(key, json::array())) {
      rows.push_back({printable(a["binding"].get<std::string>() + "/" + a["name"].get<std::string>()),
                      std::to_string(a["events"].get<std::uint64_t>()), std::to_string(a["errors"].get<std::uint64_t>()),
                      ms_text(a["p50_ms"].get<double>()), ms_text(a["p99_ms"].get<double>())});
    }
    if (rows.empty()) rows.push_back({"(none)", "", "", "", ""});
    std::string heading = std::string(title) + " (last " + std::to_string(top.value("seconds", 0)) + " s)";
    table(out, {heading, "events", "errors", "p50", "p99"}, rows);
    out << '\n';
  };
  actors("BUSIEST", "busiest");
  actors("SLOWEST", "slowest");
  actors("FAILING", "failing");
  return out.str();
}

// The terminal in a mode where keys arrive one at a time without echo, and the alternate
// screen; both restored when this ends.
class Terminal {
 public:
  Terminal() : input_(isatty(STDIN_FILENO) != 0), output_(isatty(STDOUT_FILENO) != 0) {
    if (input_) input_ = tcgetattr(STDIN_FILENO, &saved_) == 0;
    enter();
  }
  ~Terminal() { leave(); }
  // Ctrl-Z: the terminal as it was, the process stopped; when it continues, taken again.
  void suspend_now() {
    leave();
    ::raise(SIGSTOP);
    enter();
  }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;
  bool interactive() const { return input_; }
  bool screen() const { return output_; }

  // Waits up to `timeout` for a key; true if it was q (or Ctrl-C came).
  bool quit_within(std::chrono::milliseconds timeout) {
    auto until = steady::now() + timeout;
    for (;;) {
      if (interrupted) return true;
      if (suspend) {
        suspend = 0;
        suspend_now();
        return false;  // redraw at once
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
      if (left.count() <= 0) return false;
      if (!input_) {
        std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
        continue;
      }
      pollfd fd{STDIN_FILENO, POLLIN, 0};
      int ready = ::poll(&fd, 1, static_cast<int>(std::min<long long>(left.count(), 100)));
      if (ready > 0) {
        char c = 0;
        auto n = (fd.revents & POLLIN) != 0 ? ::read(STDIN_FILENO, &c, 1) : 0;
        if (n == 1 && (c == 'q' || c == 'Q')) return true;
        // The terminal hung up or failed (EOF, EIO): no more keys; signals still end it.
        if (n <= 0 && !(n < 0 && errno == EINTR)) input_ = false;
      }
    }
  }

 private:
  void enter() {
    if (input_) {
      termios raw = saved_;
      raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      raw_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    if (output_) std::cout << "\x1b[?1049h\x1b[?25l" << std::flush;
  }
  void leave() {
    if (output_) std::cout << "\x1b[?25h\x1b[?1049l" << std::flush;
    if (raw_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    raw_ = false;
  }

  bool input_;
  bool output_;
  bool raw_ = false;
  termios saved_{};
};

}  // namespace

int run_top(const TopOptions& options, const std::function<std::string(const std::string&)>& get) {
  // Every way a user ends it restores the terminal: the signals below end the loop (the
  // Terminal's destructor runs), and a closed pipe (`| head`) fails the write instead of
  // killing the process in raw mode.
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaction(signal, &action, nullptr);
  struct sigaction stop {};
  stop.sa_handler = on_suspend;
  sigemptyset(&stop.sa_mask);
  sigaction(SIGTSTP, &stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  auto ended = [] { return interrupted == SIGINT ? 130 : 128 + static_cast<int>(interrupted); };
  std::deque<Reading> readings;
  auto keep = std::max<steady::duration>(std::chrono::seconds(12), 3 * options.interval);
  std::string top_target = "/admin/top?seconds=" + std::to_string(options.window_seconds) + "&limit=5";
  // The first reading first: the terminal is taken only once the server answers, so an error
  // prints on the normal screen.
  readings.push_back(extract(get("/metrics")));
  json top = json::parse(get(top_target));
  if (interrupted) return ended();
  Terminal terminal;
  std::string problem;
  for (std::size_t drawn = 0;;) {
    std::string text = frame(options, readings, top, problem);
    if (terminal.screen()) {
      std::cout << "\x1b[H\x1b[2J" << text << std::flush;
    } else {
      std::cout << text << "----\n" << std::flush;
    }
    if (!std::cout) return 1;  // the output is gone (a closed pipe)
    if (options.iterations > 0 && ++drawn >= options.iterations) return 0;
    if (terminal.quit_within(options.interval)) return interrupted ? ended() : 0;
    // A server restarting or briefly unreachable: say so and keep the last figures.
    try {
      auto reading = extract(get("/metrics"));
      auto answer = json::parse(get(top_target));
      readings.push_back(std::move(reading));
      top = std::move(answer);
      problem.clear();
    } catch (const std::exception& e) {
      problem = e.what();
    }
    while (readings.size() > 2 && readings.back().at - readings.front().at > keep) readings.pop_front();
  }
}

}  // namespace cairn::ctl
