#include "scenarios.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "pool.hpp"

namespace cairn::load {

std::atomic<std::uint64_t> progress_count{0};

namespace {

namespace http = beast::http;
using net::redirect_error;
using net::use_awaitable;
using json = nlohmann::json;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::chrono::milliseconds timeout_of(const Options& o) {
  return std::chrono::milliseconds(static_cast<long long>(o.timeout * 1000));
}

net::awaitable<void> sleep_for(Clock::duration d) {
  net::steady_timer timer(co_await net::this_coro::executor);
  timer.expires_after(d);
  beast::error_code ec;
  co_await timer.async_wait(redirect_error(use_awaitable, ec));
}

std::string flight_id(const Options& o, const std::string& kind, std::size_t i) {
  return o.prefix + "-" + kind + std::to_string(i);
}

std::string seats_target(const std::string& flight) { return "/seats?flightId=" + flight; }
std::string post_target(const char* path, const std::string& flight) {
  return std::string(path) + "?flightId=" + flight;
}

// Counts `r` as an error unless it is 2xx or one of the statuses the scenario expects.
// Returns true for 2xx.
bool classify(const HttpResult& r, Tally& tally, const Options& o,
              std::initializer_list<std::pair<int, const char*>> expected = {}) {
  if (r.status >= 200 && r.status < 300) return true;
  for (const auto& [status, label] : expected) {
    if (r.status == status) {
      ++tally.expected[label];
      return false;
    }
  }
  if (r.status == 503 && o.expect_overload) {
    ++tally.expected["503 overloaded"];
    return false;
  }
  ++tally.errors[r.kind()];
  return false;
}

// ---------------------------------------------------------------- request loops

struct Op {
  http::verb method = http::verb::get;
  std::string target;
  std::string body;
  std::string series;
  BookingAttempt booking;  // used when booking.name is set
  std::size_t index = 0;   // the scenario's own
};

// A connection's own state across its requests (the hot scenario keeps a token in it).
struct Worker {
  std::size_t index = 0;
  std::string seat;
  std::string token;
  bool holding = false;
};

struct Plan {
  std::function<std::optional<Op>(Worker&)> next;
  std::function<void(const Op&, const HttpResult&, Worker&, Tally&)> on_reply;
};

struct Window {
  Clock::time_point start;
  Clock::time_point end;
  std::atomic<std::uint64_t> issued{0};
};

// One connection's loop. Closed loop: the next request goes when the last is answered.
// Open loop (--rate): request i of connection j is due at start + (i*C + j)/R, and its
// latency counts from then, so a stalled server cannot hide behind the harness waiting.
net::awaitable<void> drive(const Options& o, const Target& target, const Plan& plan, Worker worker,
                           Tally& tally, Window& window) {
  auto executor = co_await net::this_coro::executor;
  HttpConnection conn(executor, target, timeout_of(o));
  net::steady_timer timer(executor);
  for (std::uint64_t i = 0;; ++i) {
    Clock::time_point intended;
    if (o.rate > 0) {
      intended = window.start + seconds((static_cast<double>(i) * o.connections + static_cast<double>(worker.index)) / o.rate);
      if (intended >= window.end) break;
      if (intended > Clock::now()) {
        timer.expires_at(intended);
        beast::error_code ec;
        co_await timer.async_wait(redirect_error(use_awaitable, ec));
      }
    } else {
      intended = Clock::now();
      if (intended >= window.end) break;
    }
    if (o.requests && window.issued.fetch_add(1) >= o.requests) break;
    auto op = plan.next(worker);
    if (!op) break;
    auto result = co_await conn.request(op->method, op->target, op->body);
    auto done = Clock::now();
    if (result.status) tally.series[op->series].record(done - intended, done - window.start);
    plan.on_reply(*op, result, worker, tally);
    progress_count.fetch_add(1, std::memory_order_relaxed);
  }
  conn.close();
}

// Runs `plan` on `connections` connections over the harness's threads until the window
// ends, the request cap is reached or plan.next() has nothing more. Returns the merged tally.
Tally run_plan(const Options& o, const Target& target, const Plan& plan, unsigned connections,
               Window& window, std::function<void(Worker&)> init = {}) {
  Pool pool(o.threads);
  std::vector<Tally> tallies(pool.size());
  for (unsigned j = 0; j < connections; ++j) {
    Worker w;
    w.index = j;
    if (init) init(w);
    pool.spawn(j, drive(o, target.pick(j), plan, std::move(w), tallies[j % pool.size()], window));
  }
  pool.run();
  Tally all;
  for (auto& t : tallies) all.merge(std::move(t));
  return all;
}

// Runs `plan` for --duration (or until it has nothing more); `measured` gets the seconds the
// measurement lasted.
Tally measure(const Options& o, const Target& target, const Plan& plan, unsigned connections, double& measured,
              std::function<void(Worker&)> init = {}) {
  Window window;
  window.start = Clock::now();
  window.end = window.start + seconds(o.duration);
  auto tally = run_plan(o, target, plan, connections, window, std::move(init));
  measured = std::min(since(window.start), o.duration);
  return tally;
}

// GET /seats of every flight in `flights` (C connections), as parsed JSON (null where the
// answer was not 200 JSON; the failure is counted in `tally`).
std::vector<json> fetch_seats(const Options& o, const Target& target, const std::vector<std::string>& flights,
                              Tally& tally) {
  std::vector<json> out(flights.size());
  std::atomic<std::size_t> next{0};
  Plan plan;
  plan.next = [&](Worker&) -> std::optional<Op> {
    auto i = next.fetch_add(1);
    if (i >= flights.size()) return std::nullopt;
    return Op{http::verb::get, seats_target(flights[i]), {}, "final GET /seats", {}, i};
  };
  plan.on_reply = [&](const Op& op, const HttpResult& r, Worker&, Tally& t) {
    if (!classify(r, t, o)) return;
    try {
      out[op.index] = json::parse(r.body);
    } catch (const std::exception&) {
      ++t.errors["GET /seats: not JSON"];
    }
  };
  Window window;
  window.start = Clock::now();
  window.end = Clock::time_point::max();
  Options closed = o;
  closed.rate = 0;
  closed.requests = 0;
  auto got = run_plan(closed, target, plan, std::max(1u, std::min<unsigned>(o.connections, static_cast<unsigned>(flights.size()))), window);
  got.series.clear();
  tally.merge(std::move(got));
  return out;
}

// The seats of a GET /seats body that are free to book ("available", or no state at all on
// a server without holds).
std::vector<std::string> free_seats(const json& seats) {
  std::vector<std::string> out;
  if (!seats.is_array()) return out;
  for (const auto& s : seats) {
    if (!s.is_object() || !s.contains("seatNumber") || !s["seatNumber"].is_string()) continue;
    bool occupied = s.contains("occupant") && !s["occupant"].is_null();
    bool held = s.contains("state") && s["state"] != "available";
    if (!occupied && !held) out.push_back(s["seatNumber"].get<std::string>());
  }
  return out;
}

// A set-up phase that could not talk to the server ends the run (exit status 2).
void require_no_errors(const Tally& tally, const std::string& phase) {
  if (tally.errors.empty()) return;
  std::string kinds;
  for (const auto& [kind, n] : tally.errors) kinds += (kinds.empty() ? "" : ", ") + kind + " x" + std::to_string(n);
  throw std::runtime_error(phase + " failed: " + kinds);
}

void finish(RunResult& result, Tally&& tally, double measured_seconds) {
  result.seconds = measured_seconds;
  for (auto& [name, series] : tally.series) result.series[name] = series.summarize(measured_seconds);
  result.errors = std::move(tally.errors);
  result.expected = std::move(tally.expected);
}

void check_errors(RunResult& result, const std::string& what) {
  std::uint64_t n = 0;
  std::string kinds;
  for (const auto& [kind, count] : result.errors) {
    n += count;
    kinds += (kinds.empty() ? "" : ", ") + kind + " x" + std::to_string(count);
  }
  result.checks.push_back({what, n == 0, n == 0 ? "none" : std::to_string(n) + " (" + kinds + ")"});
}

// ---------------------------------------------------------------- get, seats, coldstart

RunResult run_get(const Options& o, const Target& target, RunResult result) {
  Plan plan;
  plan.next = [&](Worker&) { return std::optional<Op>(Op{http::verb::get, o.path, {}, "GET " + o.path, {}}); };
  plan.on_reply = [&](const Op&, const HttpResult& r, Worker&, Tally& t) { classify(r, t, o); };
  double measured = 0;
  auto tally = measure(o, target, plan, o.connections, measured);
  finish(result, std::move(tally), measured);
  check_errors(result, "every request answered 2xx");
  return result;
}

RunResult run_seats(const Options& o, const Target& target, RunResult result) {
  std::vector<std::string> flights;
  for (unsigned i = 0; i < o.flights; ++i) flights.push_back(flight_id(o, "s", i));
  Tally warm;
  fetch_seats(o, target, flights, warm);  // first use creates them; not measured
  require_no_errors(warm, "loading the flights' seats");

  std::atomic<std::uint64_t> n{0};
  Plan plan;
  plan.next = [&](Worker&) {
    return std::optional<Op>(Op{http::verb::get, seats_target(flights[n.fetch_add(1) % flights.size()]), {}, "GET /seats", {}});
  };
  plan.on_reply = [&](const Op&, const HttpResult& r, Worker&, Tally& t) {
    if (classify(r, t, o) && (r.body.empty() || r.body.front() != '[')) ++t.errors["GET /seats: not an array"];
  };
  double measured = 0;
  auto tally = measure(o, target, plan, o.connections, measured);
  finish(result, std::move(tally), measured);
  check_errors(result, "every request answered 200 with a seat array");
  return result;
}

RunResult run_coldstart(const Options& o, const Target& target, RunResult result) {
  std::atomic<std::uint64_t> n{0};
  Plan plan;
  plan.next = [&](Worker&) {
    return std::optional<Op>(Op{http::verb::get, seats_target(flight_id(o, "cold", n.fetch_add(1))), {}, "first GET /seats", {}});
  };
  plan.on_reply = [&](const Op&, const HttpResult& r, Worker&, Tally& t) {
    if (!classify(r, t, o)) return;
    try {
      auto seats = json::parse(r.body);
      if (!seats.is_array() || seats.empty() || free_seats(seats).size() != seats.size()) {
        ++t.errors["new flight: not an array of free seats"];
      }
    } catch (const std::exception&) {
      ++t.errors["new flight: not JSON"];
    }
  };
  double measured = 0;
  auto tally = measure(o, target, plan, o.connections, measured);
  finish(result, std::move(tally), measured);
  result.extra["flights_created"] = result.series["first GET /seats"].count;
  check_errors(result, "every new flight answered 200 with free seats");
  return result;
}

// ---------------------------------------------------------------- book

// Appends the booking check of `attempts` against the flights' final state.
void check_bookings_now(const Options& o, const Target& target, std::vector<BookingAttempt>& attempts,
                        RunResult& result) {
  std::set<std::string> touched;
  for (const auto& a : attempts) touched.insert(a.flight);
  std::vector<std::string> flights(touched.begin(), touched.end());
  Tally fetch_errors;
  auto states = fetch_seats(o, target, flights, fetch_errors);
  std::map<std::string, json> final_seats;
  for (std::size_t i = 0; i < flights.size(); ++i) final_seats[flights[i]] = states[i];
  auto check = check_bookings(attempts, final_seats);
  std::uint64_t unknown = 0;
  for (const auto& a : attempts) unknown += a.outcome == BookingAttempt::Outcome::unknown;
  std::string detail = check.summary() + "; " + std::to_string(unknown) + " without an answer";
  for (const auto& e : check.examples) detail += "\n    " + e;
  result.checks.push_back({"every acknowledged booking present, no seat booked twice", check.ok(), detail});
  result.extra["acknowledged"] = check.acknowledged;
  result.extra["lost"] = check.lost;
  result.extra["double_booked"] = check.double_booked;
  for (const auto& [kind, n] : fetch_errors.errors) result.errors["final check: " + kind] += n;
}

void record_booking(const Op& op, const HttpResult& r, Tally& t, const Options& o) {
  auto attempt = op.booking;
  if (classify(r, t, o, {{409, "409 seat taken"}})) {
    attempt.outcome = BookingAttempt::Outcome::acknowledged;
  } else if (r.status >= 400 && r.status < 500) {
    attempt.outcome = BookingAttempt::Outcome::rejected;
  } else {
    attempt.outcome = BookingAttempt::Outcome::unknown;
  }
  t.bookings.push_back(std::move(attempt));
}

RunResult run_book(const Options& o, const Target& target, RunResult result) {
  std::vector<std::string> flights;
  for (unsigned i = 0; i < o.flights; ++i) flights.push_back(flight_id(o, "b", i));
  Tally warm;
  auto states = fetch_seats(o, target, flights, warm);
  require_no_errors(warm, "loading the flights' seats");
  // Slot k: the (k / F)-th free seat of flight k % F, so consecutive bookings spread.
  std::vector<std::pair<std::size_t, std::string>> slots;
  std::vector<std::vector<std::string>> free(flights.size());
  std::size_t most = 0;
  for (std::size_t f = 0; f < flights.size(); ++f) most = std::max(most, (free[f] = free_seats(states[f])).size());
  for (std::size_t k = 0; k < most; ++k) {
    for (std::size_t f = 0; f < flights.size(); ++f) {
      if (k < free[f].size()) slots.emplace_back(f, free[f][k]);
    }
  }
  if (slots.empty()) throw std::invalid_argument("book: the flights have no free seats (use a fresh --prefix)");

  std::atomic<std::size_t> fresh{0};
  std::atomic<std::uint64_t> names{0};
  Plan plan;
  plan.next = [&](Worker&) -> std::optional<Op> {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::size_t slot;
    std::size_t issued = fresh.load();
    if (o.contention > 0 && issued > 0 && std::uniform_real_distribution<>(0, 1)(rng) < o.contention) {
      slot = std::uniform_int_distribution<std::size_t>(0, std::min(issued, slots.size()) - 1)(rng);
    } else {
      slot = fresh.fetch_add(1);
      if (slot >= slots.size()) return std::nullopt;
    }
    const auto& [f, seat] = slots[slot];
    std::string name = o.prefix + "-n" + std::to_string(names.fetch_add(1));
    Op op{http::verb::post, post_target("/book-seat", flights[f]),
          json{{"seatNumber", seat}, {"name", name}}.dump(), "POST /book-seat", {flights[f], seat, name, {}}};
    return op;
  };
  plan.on_reply = [&](const Op& op, const HttpResult& r, Worker&, Tally& t) { record_booking(op, r, t, o); };
  double measured = 0;
  auto tally = measure(o, target, plan, o.connections, measured);
  auto attempts = std::move(tally.bookings);
  finish(result, std::move(tally), measured);
  if (fresh.load() >= slots.size()) {
    result.extra["note"] = "every free seat was tried before the time was up (" + std::to_string(slots.size()) +
                           " seats over " + std::to_string(flights.size()) + " flights)";
  }
  check_errors(result, "no 5xx, no 4xx but 409, no transport errors");
  check_bookings_now(o, target, attempts, result);
  return result;
}

// ---------------------------------------------------------------- hot

// Holds and releases seats of one flight: every request is a durable write on one actor.
RunResult run_hot(const Options& o, const Target& target, RunResult result) {
  std::string flight = flight_id(o, "hot", 0);
  Tally warm;
  auto states = fetch_seats(o, target, {flight}, warm);
  require_no_errors(warm, "loading the flight's seats");
  auto seats = free_seats(states[0]);
  if (seats.empty()) throw std::invalid_argument("hot: flight " + flight + " has no free seat");
  unsigned connections = std::min<unsigned>(o.connections, static_cast<unsigned>(seats.size()));
  if (connections < o.connections) result.extra["note"] = "connections capped at the flight's " + std::to_string(seats.size()) + " free seats";

  Plan plan;
  plan.next = [&](Worker& w) -> std::optional<Op> {
    if (!w.holding) {
      return Op{http::verb::post, post_target("/hold-seat", flight), json{{"seatNumber", w.seat}}.dump(), "write (hold or release)", {}};
    }
    return Op{http::verb::post, post_target("/release-seat", flight),
              json{{"seatNumber", w.seat}, {"holdToken", w.token}}.dump(), "write (hold or release)", {}};
  };
  plan.on_reply = [&](const Op& op, const HttpResult& r, Worker& w, Tally& t) {
    bool hold = op.target.rfind("/hold-seat", 0) == 0;
    if (!classify(r, t, o)) {
      // No answer: the seat's state is unknown from here on.
      if (r.status == 0 || r.status >= 500) t.bookings.push_back({flight, w.seat, "unknown", BookingAttempt::Outcome::unknown});
      return;
    }
    if (hold) {
      try {
        w.token = json::parse(r.body).at("holdToken").get<std::string>();
        w.holding = true;
      } catch (const std::exception&) {
        ++t.errors["hold: no holdToken in the answer"];
        return;
      }
    } else {
      w.holding = false;
    }
    t.bookings.push_back({flight, w.seat, w.holding ? "held" : "available", BookingAttempt::Outcome::acknowledged});
  };
  double measured = 0;
  auto tally = measure(o, target, plan, connections, measured, [&](Worker& w) { w.seat = seats[w.index]; });
  // The last acknowledged state of each seat, in the order each connection saw them.
  std::map<std::string, std::string> last;
  for (const auto& b : tally.bookings) last[b.seat] = b.name;
  finish(result, std::move(tally), measured);
  check_errors(result, "every write answered 200");

  Tally fetch_errors;
  auto after = fetch_seats(o, target, {flight}, fetch_errors)[0];
  std::uint64_t wrong = 0;
  std::string detail;
  for (const auto& s : after.is_array() ? after : json::array()) {
    auto it = last.find(s.value("seatNumber", ""));
    if (it == last.end() || it->second == "unknown") continue;
    std::string state = s.value("state", "");
    if (state != it->second) {
      if (++wrong <= 5) detail += "\n    seat " + it->first + ": last acknowledged " + it->second + ", shows " + state;
    }
  }
  result.checks.push_back({"each seat shows its last acknowledged write", after.is_array() && wrong == 0,
                           after.is_array() ? std::to_string(last.size()) + " seats, " + std::to_string(wrong) + " wrong" + detail
                                            : "final GET /seats failed"});
  return result;
}

// ---------------------------------------------------------------- sockets (fanout, hibernate)

struct SocketFlight;

struct Socket {
  SocketFlight* flight = nullptr;
  std::size_t index = 0;
  std::unique_ptr<WsConnection> conn;
  std::uint64_t seen = 0;  // the last change this socket observed
  std::string last;        // the last message
  bool open = false;
  std::string closed_reason;
};

// What the sockets of a flight are waiting to see: a booking (its name appears), a
// cancellation (the name vanishes) or, for a wake, any seat array on socket 0.
struct SocketFlight {
  enum class Watch { appear, vanish, array_on_first };
  std::string id;
  std::vector<Socket*> sockets;
  std::mutex m;
  std::uint64_t change = 0;  // 0: nothing watched
  Watch watch = Watch::appear;
  std::string needle;
  std::size_t remaining = 0;
  Clock::time_point sent;
  std::string series;
  // The watcher's timer, woken when remaining reaches 0. Shared: a wake posted to it may run
  // after the watcher has stopped waiting.
  std::shared_ptr<net::steady_timer> waiter;
};

struct SocketRun {
  const Options* o = nullptr;
  const Target* target = nullptr;
  Pool* pool = nullptr;
  std::vector<Tally>* tallies = nullptr;
  std::atomic<std::size_t> connected{0}, failed{0}, closed_early{0};
  std::atomic<bool> stopping{false};
  Clock::time_point start;
};

// glibc's memmem (two-way search): std::string::find stops at every '"' of a seat map.
bool contains(const std::string& haystack, const std::string& needle) {
  return ::memmem(haystack.data(), haystack.size(), needle.data(), needle.size()) != nullptr;
}

bool satisfies(const SocketFlight& f, const Socket& s, const std::string& message) {
  switch (f.watch) {
    case SocketFlight::Watch::appear:
      return contains(message, f.needle);
    case SocketFlight::Watch::vanish:
      return !contains(message, f.needle);
    case SocketFlight::Watch::array_on_first:
      return s.index == 0 && !message.empty() && message.front() == '[';
  }
  return false;
}

// Marks `s` as having seen the watched change; records the latency and wakes the watcher
// when it was the last. Called with f.m held.
void observed(SocketFlight& f, Socket& s, Tally& tally, Clock::time_point start) {
  s.seen = f.change;
  if (f.remaining == 0 || --f.remaining > 0) return;
  auto now = Clock::now();
  tally.series[f.series].record(now - f.sent, now - start);
  progress_count.fetch_add(1, std::memory_order_relaxed);
  if (f.waiter) net::post(f.waiter->get_executor(), [w = f.waiter] { w->cancel(); });
}

net::awaitable<void> socket_task(SocketRun& run, Socket& s, Tally& tally) {
  auto executor = co_await net::this_coro::executor;
  s.conn = std::make_unique<WsConnection>(executor, *run.target);
  auto t0 = Clock::now();
  auto error = co_await s.conn->connect("/ws?flightId=" + s.flight->id, timeout_of(*run.o));
  if (!error.empty()) {
    ++tally.errors["ws " + error];
    run.failed.fetch_add(1);
    co_return;
  }
  tally.series["WebSocket connect"].record(Clock::now() - t0, Clock::now() - run.start);
  {
    std::lock_guard lock(s.flight->m);
    s.open = true;
  }
  run.connected.fetch_add(1);
  for (;;) {
    std::string reason;
    auto message = co_await s.conn->read(reason);
    std::lock_guard lock(s.flight->m);
    auto& f = *s.flight;
    if (!message) {
      s.open = false;
      s.closed_reason = reason;
      if (!run.stopping) {
        ++tally.errors["socket closed early: " + reason];
        run.closed_early.fetch_add(1);
        // It will never see the watched change: stop waiting for it.
        if (f.change && s.seen != f.change && f.watch != SocketFlight::Watch::array_on_first) observed(f, s, tally, run.start);
      }
      co_return;
    }
    s.last = std::move(*message);
    if (f.change && s.seen != f.change && satisfies(f, s, s.last)) observed(f, s, tally, run.start);
  }
}

// A watch on `f`: start it, make the change (send it), then await it; or cancel it if the
// change could not be made. `timer` (the watcher's, on its thread) is woken when every open
// socket (or socket 0 for a wake) has seen the change.
void begin_watch(SocketFlight& f, const std::shared_ptr<net::steady_timer>& timer, SocketFlight::Watch watch, std::string needle,
                 std::string series) {
  std::lock_guard lock(f.m);
  f.change += 1;
  f.watch = watch;
  f.needle = std::move(needle);
  f.series = std::move(series);
  f.remaining = 0;
  for (auto* s : f.sockets) {
    if (s->open && (watch != SocketFlight::Watch::array_on_first || s->index == 0)) ++f.remaining;
  }
  f.sent = Clock::now();
  f.waiter = timer;
}

void cancel_watch(SocketFlight& f) {
  std::lock_guard lock(f.m);
  f.change += 1;  // nobody waits for a change that was not made
  f.remaining = 0;
  f.waiter.reset();
}

// False if the change was not seen everywhere within --timeout (counted in `tally`).
net::awaitable<bool> await_watch(const Options& o, SocketFlight& f, const std::shared_ptr<net::steady_timer>& timer,
                                 Tally& tally) {
  auto deadline = Clock::now() + timeout_of(o);
  bool ok = true;
  for (;;) {
    {
      std::lock_guard lock(f.m);
      if (f.remaining == 0) break;
      if (Clock::now() >= deadline) {
        ok = false;
        ++tally.errors["change not seen by every socket within --timeout"];
        break;
      }
    }
    timer->expires_at(deadline);
    beast::error_code ec;
    co_await timer->async_wait(redirect_error(use_awaitable, ec));
  }
  cancel_watch(f);
  co_return ok;
}

// Waits (polling) until `done()` or `limit` passes.
net::awaitable<bool> wait_until(std::function<bool()> done, Clock::duration limit) {
  auto end = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= end) co_return false;
    co_await sleep_for(std::chrono::milliseconds(5));
  }
  co_return true;
}

struct SocketSetup {
  std::vector<std::unique_ptr<SocketFlight>> flights;
  std::vector<std::unique_ptr<Socket>> sockets;
};

SocketSetup make_sockets(const Options& o, const std::string& kind) {
  SocketSetup setup;
  for (unsigned f = 0; f < o.flights; ++f) {
    auto flight = std::make_unique<SocketFlight>();
    flight->id = flight_id(o, kind, f);
    for (unsigned i = 0; i < o.sockets; ++i) {
      auto s = std::make_unique<Socket>();
      s->flight = flight.get();
      s->index = i;
      flight->sockets.push_back(s.get());
      setup.sockets.push_back(std::move(s));
    }
    setup.flights.push_back(std::move(flight));
  }
  return setup;
}

void start_sockets(SocketRun& run, SocketSetup& setup) {
  for (std::size_t i = 0; i < setup.sockets.size(); ++i) {
    run.pool->spawn(i, socket_task(run, *setup.sockets[i], (*run.tallies)[i % run.pool->size()]));
  }
}

net::awaitable<void> close_sockets(SocketRun& run, SocketSetup& setup) {
  run.stopping = true;
  for (std::size_t i = 0; i < setup.sockets.size(); ++i) {
    auto* s = setup.sockets[i].get();
    if (!s->conn) continue;
    net::co_spawn(run.pool->at(i), s->conn->close(), [](std::exception_ptr) {});
  }
  co_return;
}

// One flight's booker in fanout: books a seat, waits until every socket shows it, cancels
// it (cairn's /cancel-booking; if the server has none, moves to the next free seat), waits
// until every socket shows the seat free, and so on until the window ends.
net::awaitable<void> fanout_booker(SocketRun& run, SocketFlight& f, std::vector<std::string> seats,
                                   Clock::time_point end, Tally& tally) {
  const auto& o = *run.o;
  HttpConnection conn(co_await net::this_coro::executor, *run.target, timeout_of(o));
  bool cancels = true;
  std::size_t next_seat = 0;
  auto timer = std::make_shared<net::steady_timer>(co_await net::this_coro::executor);
  for (std::uint64_t n = 0; Clock::now() < end && next_seat < seats.size(); ++n) {
    const std::string seat = seats[next_seat];
    const std::string name = o.prefix + "-" + f.id + "-n" + std::to_string(n);
    const std::string needle = "\"" + name + "\"";

    begin_watch(f, timer, SocketFlight::Watch::appear, needle, "broadcast (booking seen by every socket)");
    auto t0 = Clock::now();
    // (GCC 12 cannot compile a braced json temporary inside a co_await expression.)
    std::string body = json{{"seatNumber", seat}, {"name", name}}.dump();
    auto r = co_await conn.request(http::verb::post, post_target("/book-seat", f.id), body);
    if (r.status) tally.series["POST /book-seat"].record(Clock::now() - t0, Clock::now() - run.start);
    if (!classify(r, tally, o)) {
      cancel_watch(f);
      break;
    }
    if (!co_await await_watch(o, f, timer, tally)) break;
    std::string token = json::parse(r.body, nullptr, false).value("bookingToken", "");
    if (!cancels || token.empty()) {
      cancels = false;
      ++next_seat;
      continue;
    }

    begin_watch(f, timer, SocketFlight::Watch::vanish, needle, "broadcast (cancellation seen by every socket)");
    body = json{{"seatNumber", seat}, {"bookingToken", token}}.dump();
    r = co_await conn.request(http::verb::post, post_target("/cancel-booking", f.id), body);
    if (r.status == 404 || r.status == 405) {  // a server without cancellations
      cancel_watch(f);
      cancels = false;
      ++next_seat;
      continue;
    }
    if (!classify(r, tally, o)) {
      cancel_watch(f);
      break;
    }
    if (!co_await await_watch(o, f, timer, tally)) break;
  }
  conn.close();
}

net::awaitable<void> fanout_main(SocketRun& run, SocketSetup& setup, RunResult& result, double& measured) {
  const auto& o = *run.o;
  auto total = setup.sockets.size();
  auto t0 = Clock::now();
  co_await wait_until([&] { return run.connected + run.failed >= total; }, seconds(o.timeout + 5));
  result.extra["sockets_connected"] = run.connected.load();
  result.extra["connect_seconds"] = since(t0);

  // Every flight's seats (it exists now: the sockets created it).
  HttpConnection conn(co_await net::this_coro::executor, *run.target, timeout_of(o));
  std::vector<std::vector<std::string>> seats;
  for (auto& f : setup.flights) {
    auto r = co_await conn.request(http::verb::get, seats_target(f->id));
    seats.push_back(r.status == 200 ? free_seats(json::parse(r.body, nullptr, false)) : std::vector<std::string>{});
  }

  run.start = Clock::now();
  auto end = run.start + seconds(o.duration);
  std::atomic<std::size_t> done{0};
  for (std::size_t i = 0; i < setup.flights.size(); ++i) {
    // Each booker on a thread of its own where possible, its timer woken by posts.
    auto task = [](SocketRun& r, SocketFlight& f, std::vector<std::string> s, Clock::time_point e, Tally& t,
                   std::atomic<std::size_t>& d) -> net::awaitable<void> {
      co_await fanout_booker(r, f, std::move(s), e, t);
      d.fetch_add(1);
    };
    run.pool->spawn(i, task(run, *setup.flights[i], seats[i], end, (*run.tallies)[i % run.pool->size()], done));
  }
  co_await wait_until([&] { return done == setup.flights.size(); }, seconds(o.duration + 2 * o.timeout + 5));
  measured = std::min(since(run.start), o.duration);

  // Every socket's last state must equal a final GET /seats of its flight.
  std::uint64_t compared = 0, differ = 0;
  std::string detail;
  for (auto& f : setup.flights) {
    auto r = co_await conn.request(http::verb::get, seats_target(f->id));
    auto final_state = json::parse(r.body, nullptr, false);
    std::lock_guard lock(f->m);
    for (auto* s : f->sockets) {
      if (!s->open) continue;
      ++compared;
      if (json::parse(s->last, nullptr, false) != final_state || r.status != 200) {
        if (++differ <= 3) detail += "\n    flight " + f->id + " socket " + std::to_string(s->index) + ": last state differs";
      }
    }
  }
  result.checks.push_back({"every socket's last state equals a final GET /seats", differ == 0 && compared > 0,
                           std::to_string(compared) + " sockets compared, " + std::to_string(differ) + " differ" + detail});
  conn.close();
  co_await close_sockets(run, setup);
}

using SocketMain = net::awaitable<void> (*)(SocketRun&, SocketSetup&, RunResult&, double&);

// Opens --sockets on each of --flights (flight ids PREFIX-<kind>N) and runs `main` beside
// them; merges what every thread saw.
RunResult run_with_sockets(const Options& o, const Target& target, RunResult result, const std::string& kind,
                           SocketMain main) {
  Pool pool(o.threads);
  std::vector<Tally> tallies(pool.size());
  SocketRun run;
  run.o = &o;
  run.target = &target;
  run.pool = &pool;
  run.tallies = &tallies;
  run.start = Clock::now();
  auto setup = make_sockets(o, kind);
  start_sockets(run, setup);
  double measured = 0;
  pool.spawn(0, main(run, setup, result, measured));
  pool.run();
  Tally all;
  for (auto& t : tallies) all.merge(std::move(t));
  finish(result, std::move(all), measured);
  check_errors(result, "no errors, no socket closed early");
  return result;
}

RunResult run_fanout(const Options& o, const Target& target, RunResult result) {
  return run_with_sockets(o, target, std::move(result), "f", fanout_main);
}

net::awaitable<void> send_flagged(Socket* s, std::string text, std::shared_ptr<std::atomic<int>> flag) {
  auto error = co_await s->conn->send(std::move(text));
  flag->store(error.empty() ? 1 : 2);
}

// hibernate: open the sockets, wait until the server has evicted the flights (its /healthz
// says live_instances 0, if it says) or --idle-wait passes, check every socket is still
// open, then wake each flight with one message ({"type":"getSeats"}) and time the answer.
net::awaitable<void> hibernate_main(SocketRun& run, SocketSetup& setup, RunResult& result, double& measured) {
  const auto& o = *run.o;
  auto total = setup.sockets.size();
  auto t0 = Clock::now();
  co_await wait_until([&] { return run.connected + run.failed >= total; }, seconds(o.timeout + 5));
  result.extra["sockets_connected"] = run.connected.load();
  result.extra["connect_seconds"] = since(t0);

  HttpConnection conn(co_await net::this_coro::executor, *run.target, timeout_of(o));
  auto live = [&]() -> net::awaitable<std::optional<std::int64_t>> {
    auto r = co_await conn.request(http::verb::get, "/healthz");
    auto j = json::parse(r.body, nullptr, false);
    if (r.status != 200 || !j.is_object() || !j.contains("live_instances")) co_return std::nullopt;
    co_return j["live_instances"].get<std::int64_t>();
  };
  auto wait_start = Clock::now();
  std::optional<std::int64_t> live_now;
  while (since(wait_start) < o.idle_wait) {
    live_now = co_await live();
    if (live_now && *live_now == 0) break;
    co_await sleep_for(std::chrono::milliseconds(live_now ? 100 : 500));
  }
  result.extra["idle_wait_seconds"] = since(wait_start);
  result.extra["live_instances_before_wake"] = live_now ? json(*live_now) : json("unknown");
  result.checks.push_back({"the server evicted every flight (live_instances 0) within --idle-wait",
                           !live_now || *live_now == 0,
                           live_now ? "live_instances " + std::to_string(*live_now) : "the server does not report live_instances"});
  std::size_t open = 0;
  for (auto& s : setup.sockets) {
    std::lock_guard lock(s->flight->m);
    open += s->open;
  }
  result.checks.push_back({"every socket stayed open while the flights were evicted", open == run.connected.load() && open == total,
                           std::to_string(open) + " of " + std::to_string(total) + " open"});

  // Wake: one message per flight, C flights at a time.
  run.start = Clock::now();
  std::atomic<std::size_t> next{0}, done{0};
  auto waker = [](SocketRun& r, SocketSetup& su, std::atomic<std::size_t>& n, std::atomic<std::size_t>& d,
                   Tally& tally) -> net::awaitable<void> {
    auto timer = std::make_shared<net::steady_timer>(co_await net::this_coro::executor);
    for (auto i = n.fetch_add(1); i < su.flights.size(); i = n.fetch_add(1)) {
      auto& f = *su.flights[i];
      auto* first = f.sockets.front();
      begin_watch(f, timer, SocketFlight::Watch::array_on_first, "", "wake (message to an evicted flight until its answer)");
      // The socket lives on its own thread: send from there.
      auto sent = std::make_shared<std::atomic<int>>(0);
      net::co_spawn(first->conn->ws_executor(), send_flagged(first, R"({"type":"getSeats"})", sent), [](std::exception_ptr) {});
      co_await wait_until([&] { return sent->load() != 0; }, std::chrono::seconds(5));
      if (sent->load() != 1) {
        cancel_watch(f);
        ++tally.errors["wake message could not be sent"];
        continue;
      }
      co_await await_watch(*r.o, f, timer, tally);
    }
    d.fetch_add(1);
  };
  unsigned wakers = std::max(1u, std::min<unsigned>(o.connections, static_cast<unsigned>(setup.flights.size())));
  for (unsigned i = 0; i < wakers; ++i) run.pool->spawn(i, waker(run, setup, next, done, (*run.tallies)[i % run.pool->size()]));
  co_await wait_until([&] { return done == wakers; }, seconds(2 * o.timeout + 5 + static_cast<double>(setup.flights.size()) * 0.01));
  measured = since(run.start);
  if (auto after = co_await live()) result.extra["live_instances_after_wake"] = *after;
  conn.close();
  co_await close_sockets(run, setup);
}

RunResult run_hibernate(const Options& o, const Target& target, RunResult result) {
  result = run_with_sockets(o, target, std::move(result), "h", hibernate_main);
  auto woken = result.series.count("wake (message to an evicted flight until its answer)")
                   ? result.series["wake (message to an evicted flight until its answer)"].count
                   : 0;
  result.checks.push_back({"every flight answered its wake message", woken == o.flights,
                           std::to_string(woken) + " of " + std::to_string(o.flights)});
  return result;
}

// ---------------------------------------------------------------- mixed

// A user: opens the flight's socket, loads the seats, holds a free one (if the server has
// holds), books it, and waits until the socket shows the booking. Users come one after
// another on each of C slots (closed loop) or at --rate users/s (open loop).
struct MixedRun {
  const Options* o = nullptr;
  const Target* target = nullptr;
  Window window;
  std::atomic<std::uint64_t> users{0};
  std::atomic<bool> holds{true};
  static constexpr unsigned users_per_flight = 45;  // of 60 seats, so a user finds one free
};

net::awaitable<void> mixed_user(MixedRun& run, std::uint64_t n, Clock::time_point intended, Tally& tally) {
  const auto& o = *run.o;
  auto executor = co_await net::this_coro::executor;
  auto flights = std::max(1u, o.flights);
  std::string flight = o.prefix + "-m" + std::to_string(n % flights) + "-" +
                       std::to_string(n / (static_cast<std::uint64_t>(flights) * MixedRun::users_per_flight));
  std::string name = o.prefix + "-u" + std::to_string(n);
  auto since_start = [&] { return Clock::now() - run.window.start; };
  auto step = [&](const char* series, Clock::time_point from) { tally.series[series].record(Clock::now() - from, since_start()); };

  WsConnection ws(executor, *run.target);
  auto t = Clock::now();
  auto error = co_await ws.connect("/ws?flightId=" + flight, timeout_of(o));
  if (!error.empty()) {
    ++tally.errors["ws " + error];
    co_return;
  }
  step("1 WebSocket connect", t);
  // The socket's reader: flags when a state shows this user's name.
  struct Seen {
    bool name = false;
    bool closed = false;
    net::steady_timer timer;
  };
  auto seen = std::make_shared<Seen>(Seen{false, false, net::steady_timer(executor)});
  std::string needle = "\"" + name + "\"";
  net::co_spawn(executor, [](WsConnection& c, std::shared_ptr<Seen> s, std::string want) -> net::awaitable<void> {
    for (;;) {
      std::string reason;
      auto m = co_await c.read(reason);
      if (!m) break;
      if (m->find(want) != std::string::npos) {
        s->name = true;
        s->timer.cancel();
      }
    }
    s->closed = true;
    s->timer.cancel();
  }(ws, seen, needle), [](std::exception_ptr) {});

  HttpConnection conn(executor, *run.target, timeout_of(o));
  t = Clock::now();
  auto r = co_await conn.request(http::verb::get, seats_target(flight));
  if (r.status) step("2 GET /seats", t);
  std::vector<std::string> free;
  if (classify(r, tally, o)) free = free_seats(json::parse(r.body, nullptr, false));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::shuffle(free.begin(), free.end(), rng);

  bool booked = false;
  Clock::time_point book_sent;
  for (std::size_t attempt = 0; attempt < 3 && attempt < free.size() && !booked; ++attempt) {
    const auto& seat = free[attempt];
    std::string hold_token;
    if (run.holds) {
      t = Clock::now();
      std::string hold_body = json{{"seatNumber", seat}}.dump();
      r = co_await conn.request(http::verb::post, post_target("/hold-seat", flight), hold_body);
      if (r.status) step("3 POST /hold-seat", t);
      if (r.status == 404 || r.status == 405) {
        run.holds = false;
      } else if (!classify(r, tally, o, {{409, "409 seat taken"}})) {
        continue;
      } else {
        hold_token = json::parse(r.body, nullptr, false).value("holdToken", "");
      }
    }
    json body{{"seatNumber", seat}, {"name", name}};
    if (!hold_token.empty()) body["holdToken"] = hold_token;
    book_sent = Clock::now();
    r = co_await conn.request(http::verb::post, post_target("/book-seat", flight), body.dump());
    if (r.status) step("4 POST /book-seat", book_sent);
    Op op{http::verb::post, {}, {}, {}, {flight, seat, name, {}}};
    record_booking(op, r, tally, o);
    booked = r.status == 200;
  }
  if (booked) {
    auto deadline = Clock::now() + timeout_of(o);
    while (!seen->name && !seen->closed && Clock::now() < deadline) {
      seen->timer.expires_at(deadline);
      beast::error_code ec;
      co_await seen->timer.async_wait(redirect_error(use_awaitable, ec));
    }
    if (seen->name) {
      step("5 booking seen on the user's socket", book_sent);
    } else {
      ++tally.errors[seen->closed ? "socket closed before the booking was seen" : "booking not seen on the socket within --timeout"];
    }
  } else if (!free.empty()) {
    ++tally.expected["user found no seat in 3 tries"];
  }
  conn.close();
  co_await ws.close();
  // The reader must finish before `ws` goes: wait for it (cut the socket if it lingers).
  for (int i = 0; !seen->closed; ++i) {
    if (i == 20) ws.abort();
    seen->timer.expires_after(std::chrono::milliseconds(100));
    beast::error_code ec;
    co_await seen->timer.async_wait(redirect_error(use_awaitable, ec));
  }
  auto now = Clock::now();
  tally.series["user session (from intended start)"].record(now - intended, now - run.window.start);
  progress_count.fetch_add(1, std::memory_order_relaxed);
}

net::awaitable<void> mixed_slot(MixedRun& run, std::size_t slot, Tally& tally) {
  const auto& o = *run.o;
  net::steady_timer timer(co_await net::this_coro::executor);
  for (std::uint64_t i = 0;; ++i) {
    Clock::time_point intended;
    if (o.rate > 0) {
      intended = run.window.start + seconds((static_cast<double>(i) * o.connections + static_cast<double>(slot)) / o.rate);
      if (intended >= run.window.end) break;
      timer.expires_at(intended);
      beast::error_code ec;
      co_await timer.async_wait(redirect_error(use_awaitable, ec));
    } else {
      intended = Clock::now();
      if (intended >= run.window.end) break;
    }
    auto n = run.users.fetch_add(1);
    if (o.requests && n >= o.requests) break;
    co_await mixed_user(run, n, intended, tally);
  }
}

RunResult run_mixed(const Options& o, const Target& target, RunResult result) {
  MixedRun run;
  run.o = &o;
  run.target = &target;
  run.window.start = Clock::now();
  run.window.end = run.window.start + seconds(o.duration);
  Pool pool(o.threads);
  std::vector<Tally> tallies(pool.size());
  for (unsigned j = 0; j < o.connections; ++j) pool.spawn(j, mixed_slot(run, j, tallies[j % pool.size()]));
  pool.run();
  double measured = std::min(since(run.window.start), o.duration);
  Tally all;
  for (auto& t : tallies) all.merge(std::move(t));
  auto attempts = std::move(all.bookings);
  finish(result, std::move(all), measured);
  result.extra["holds"] = run.holds.load();
  check_errors(result, "no errors (409 on a contested seat is expected)");
  check_bookings_now(o, target, attempts, result);
  return result;
}

// ---------------------------------------------------------------- disk

// The disk's own rate of small appends, each made durable with fdatasync: the ceiling of
// durable commits on one file.
RunResult run_disk(const Options& o, RunResult result) {
  std::string path = o.dir + "/cairn-load-fdatasync.tmp";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::invalid_argument("disk: cannot create " + path + ": " + std::strerror(errno));
  Series series;
  char record[100];
  std::memset(record, 'x', sizeof record);
  auto start = Clock::now();
  auto end = start + seconds(o.duration);
  std::uint64_t failures = 0;
  while (Clock::now() < end && (!o.requests || series.count() < o.requests)) {
    auto t = Clock::now();
    if (::write(fd, record, sizeof record) != static_cast<ssize_t>(sizeof record) || ::fdatasync(fd) != 0) ++failures;
    auto now = Clock::now();
    series.record(now - t, now - start);
    progress_count.fetch_add(1, std::memory_order_relaxed);
  }
  ::close(fd);
  ::unlink(path.c_str());
  double measured = since(start);
  result.seconds = measured;
  result.series["append 100 B + fdatasync"] = series.summarize(measured);
  if (failures) result.errors["write or fdatasync failed"] = failures;
  check_errors(result, "every append durable");
  return result;
}

// The file system's own rate of new databases: the file work a never-used actor needs, without
// SQLite, HTTP or anything of cairn. Each one: create the file, write an 8 KiB image, fdatasync;
// create its WAL, write 32 KiB, fdatasync; every 64th also fsyncs the directory (shared, as
// cairn shares it). --connections threads at once. The files stay in a new directory under
// --dir, for the caller to remove: deleting many files slows the next creations on ext4 (it
// avoids reusing recently freed inodes), which would skew whatever runs next.
RunResult run_newfiles(const Options& o, RunResult result) {
  auto dir = std::filesystem::path(o.dir) /
             ("cairn-load-newfiles-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::system_clock::now().time_since_epoch().count()));
  std::error_code ec;
  if (!std::filesystem::create_directories(dir, ec) || ec) {
    throw std::invalid_argument("newfiles: cannot create " + dir.string() + ": " + ec.message());
  }
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) throw std::invalid_argument("newfiles: cannot open " + dir.string() + ": " + std::strerror(errno));
  std::vector<char> data(32 * 1024, 'x');
  auto write_synced = [&](const std::string& path, std::size_t bytes) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    bool ok = ::pwrite(fd, data.data(), bytes, 0) == static_cast<ssize_t>(bytes) && ::fdatasync(fd) == 0;
    return ::close(fd) == 0 && ok;
  };
  std::atomic<std::uint64_t> next{0}, failures{0};
  std::mutex mutex;
  Series series;
  auto start = Clock::now();
  auto end = start + seconds(o.duration);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < std::max(1u, o.connections); ++t) {
    threads.emplace_back([&] {
      while (Clock::now() < end) {
        auto n = next.fetch_add(1);
        if (o.requests && n >= o.requests) break;
        auto t0 = Clock::now();
        std::string name = "a";  // not "a" + to_string(n): GCC 12's false -Wrestrict at -O3
        name += std::to_string(n);
        auto file = (dir / (name + ".sqlite")).string();
        bool ok = write_synced(file, 8 * 1024) && write_synced(file + "-wal", 32 * 1024) &&
                  (n % 64 != 0 || ::fsync(dir_fd) == 0);
        if (!ok) failures.fetch_add(1);
        auto now = Clock::now();
        std::lock_guard lock(mutex);
        series.record(now - t0, now - start);
        progress_count.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& t : threads) t.join();
  ::close(dir_fd);
  double measured = since(start);
  result.seconds = measured;
  result.series["new database file + WAL"] = series.summarize(measured);
  result.extra["directory"] = dir.string();
  if (auto n = failures.load()) result.errors["create, write or fsync failed"] = n;
  check_errors(result, "every new file durable");
  return result;
}

}  // namespace

const std::vector<ScenarioInfo>& scenarios() {
  static const std::vector<ScenarioInfo> all{
      {"seats", "GET /seats on one hot flight, or spread over --flights"},
      {"book", "POST /book-seat with fresh unique names over --flights (--contention: share aimed at seats already tried)"},
      {"hot", "holds and releases on one flight: every request a durable write on one actor (cairn's /hold-seat)"},
      {"fanout", "--sockets on each of --flights; time from a booking until every socket of its flight shows it"},
      {"coldstart", "first GET /seats of never-used flights: latency and flights/s"},
      {"hibernate", "--sockets on each of --flights, wait for eviction, wake each flight with one message"},
      {"mixed", "a user: open the socket, load seats, hold, book, see the broadcast"},
      {"get", "GET --path (e.g. /healthz): the server's HTTP ceiling"},
      {"disk", "append 100 B + fdatasync in --dir: the disk's durable-write ceiling"},
      {"newfiles", "new files in --dir as a never-used actor makes them (file and WAL, each written and fdatasynced), --connections threads: the ceiling of cold starts"},
  };
  return all;
}

RunResult run(const Options& o) {
  RunResult result;
  result.scenario = o.scenario;
  result.parameters = {{"url", o.url},         {"connections", o.connections}, {"rate", o.rate},
                       {"duration", o.duration}, {"requests", o.requests},      {"flights", o.flights},
                       {"sockets", o.sockets},  {"contention", o.contention},   {"threads", o.threads},
                       {"prefix", o.prefix},    {"timeout", o.timeout}};
  progress_count = 0;
  double cpu0 = own_cpu_seconds();
  auto wall0 = Clock::now();
  double server0 = o.server_pid ? process_cpu_seconds(o.server_pid) : -1;
  if (o.scenario == "disk") {
    result = run_disk(o, std::move(result));
  } else if (o.scenario == "newfiles") {
    result = run_newfiles(o, std::move(result));
  } else {
    auto target = parse_url(o.url, o.cacert);
    for (const auto& header : o.headers) {
      auto colon = header.find(':');
      if (colon == std::string::npos || colon == 0) {
        throw std::invalid_argument("--header '" + header + "' is not \"Name: value\"");
      }
      auto value = header.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      target.headers.emplace_back(header.substr(0, colon), value);
      for (auto& other : target.others) other.headers = target.headers;
    }
    if (o.scenario == "get") result = run_get(o, target, std::move(result));
    else if (o.scenario == "seats") result = run_seats(o, target, std::move(result));
    else if (o.scenario == "book") result = run_book(o, target, std::move(result));
    else if (o.scenario == "hot") result = run_hot(o, target, std::move(result));
    else if (o.scenario == "coldstart") result = run_coldstart(o, target, std::move(result));
    else if (o.scenario == "fanout") result = run_fanout(o, target, std::move(result));
    else if (o.scenario == "hibernate") result = run_hibernate(o, target, std::move(result));
    else if (o.scenario == "mixed") result = run_mixed(o, target, std::move(result));
    else throw std::invalid_argument("unknown scenario '" + o.scenario + "'");
  }
  result.harness_cpu_seconds = own_cpu_seconds() - cpu0;
  result.wall_seconds = since(wall0);
  if (server0 >= 0) {
    double server1 = process_cpu_seconds(o.server_pid);
    result.server_cpu_seconds = server1 >= 0 ? server1 - server0 : -1;
  }
  return result;
}

}  // namespace cairn::load
