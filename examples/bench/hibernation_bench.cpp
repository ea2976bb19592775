// cairn-bench-hibernation: what hibernation costs and how fast it wakes.
//
// Starts cairn-server (its own process, ephemeral loopback port, fresh data dir, short idle
// timeout), opens --sockets WebSockets spread over --flights flights, lets every instance
// hibernate, and prints: the server's RSS before and after and the bytes per hibernated
// socket; the time to wake every flight with one message each (p50/p99); the broadcast
// fan-out latency (booking sent -> every socket of that flight has the new state, p50/p99).
// Stops the server by its PID. Loopback only; every wait is bounded.
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include "cairn/cli/duration.hpp"
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cairn/runtime.hpp"
#include "clients.hpp"
#include "process_facts.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"

namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// What the client side knows of the current measurement; guarded by `mutex`.
struct Phase {
  std::mutex mutex;
  std::condition_variable changed;
  int flight = -1;             // the flight whose sockets are counted (-1: none)
  std::size_t expected = 0;    // messages that complete the round
  std::size_t received = 0;
  std::string must_contain;    // every counted message must contain this
  std::size_t wrong = 0;       // counted messages that did not
  Clock::time_point done;
};

struct Socket {
  explicit Socket(net::io_context& ioc) : ws(ioc) {}  // one client thread: no strand needed
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buffer;
  int flight = 0;
  bool open = false;
};

class Fleet {
 public:
  Fleet(net::io_context& ioc, std::uint16_t port, Phase& phase) : ioc_(ioc), port_(port), phase_(phase) {}

  // Opens n sockets, socket i on flight i % flights, at most `window` handshakes at once.
  bool open(std::size_t n, int flights, std::chrono::seconds limit) {
    for (std::size_t i = 0; i < n; ++i) {
      sockets_.push_back(std::make_unique<Socket>(ioc_));
      sockets_.back()->flight = static_cast<int>(i % static_cast<std::size_t>(flights));
    }
    std::size_t window = std::min<std::size_t>(256, n);
    for (std::size_t i = 0; i < window; ++i) net::post(ioc_, [this] { connect_next(); });
    auto end = Clock::now() + limit;
    while (opened_.load() + failed_.load() < n && Clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return opened_.load() == n;
  }
  std::size_t failed() const { return failed_.load(); }
  std::size_t size() const { return sockets_.size(); }

  // The first socket of each flight sends `message`; returns send -> reply per flight.
  std::vector<double> one_message_per_flight(int flights, const std::string& message,
                                             std::chrono::seconds limit) {
    std::vector<Clock::time_point> sent(static_cast<std::size_t>(flights));
    {
      std::lock_guard lock(wake_mutex_);
      wake_replies_.assign(static_cast<std::size_t>(flights), Clock::time_point{});
      waking_ = true;
    }
    for (int f = 0; f < flights; ++f) {
      Socket& s = *sockets_[static_cast<std::size_t>(f)];
      auto text = std::make_shared<std::string>(message);
      sent[static_cast<std::size_t>(f)] = Clock::now();
      net::post(s.ws.get_executor(), [&s, text] {
        s.ws.text(true);
        s.ws.async_write(net::buffer(*text), [text](beast::error_code, std::size_t) {});
      });
    }
    std::unique_lock lock(wake_mutex_);
    wake_cv_.wait_until(lock, Clock::now() + limit, [&] {
      return std::all_of(wake_replies_.begin(), wake_replies_.end(),
                         [](auto t) { return t != Clock::time_point{}; });
    });
    waking_ = false;
    std::vector<double> out;
    for (std::size_t f = 0; f < sent.size(); ++f) {
      if (wake_replies_[f] != Clock::time_point{}) out.push_back(ms(wake_replies_[f] - sent[f]));
    }
    return out;
  }

  void close_all() {
    for (auto& s : sockets_) {
      net::post(s->ws.get_executor(), [&s = *s] {
        if (s.open) s.ws.async_close(websocket::close_code::normal, [](beast::error_code) {});
      });
    }
  }

 private:
  void connect_next() {
    std::size_t i = next_.fetch_add(1);
    if (i >= sockets_.size()) return;
    Socket& s = *sockets_[i];
    beast::get_lowest_layer(s.ws).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(s.ws).async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), [this, &s](beast::error_code ec) {
          if (ec) return fail();
          std::string target = "/ws?flightId=bench-" + std::to_string(s.flight);
          s.ws.async_handshake("127.0.0.1", target, [this, &s](beast::error_code ec2) {
            if (ec2) return fail();
            beast::get_lowest_layer(s.ws).expires_never();
            s.open = true;
            ++opened_;
            read(s);
            connect_next();
          });
        });
  }
  void fail() {
    ++failed_;
    connect_next();
  }
  void read(Socket& s) {
    s.ws.async_read(s.buffer, [this, &s](beast::error_code ec, std::size_t) {
      if (ec) {
        s.open = false;
        return;
      }
      on_message(s);
      s.buffer.consume(s.buffer.size());
      read(s);
    });
  }
  void on_message(Socket& s) {
    auto now = Clock::now();
    {
      std::lock_guard lock(wake_mutex_);
      if (waking_) {
        auto f = static_cast<std::size_t>(s.flight);
        if (f < wake_replies_.size() && wake_replies_[f] == Clock::time_point{}) {
          wake_replies_[f] = now;
          wake_cv_.notify_all();
        }
        return;
      }
    }
    std::lock_guard lock(phase_.mutex);
    if (s.flight != phase_.flight) return;
    auto data = s.buffer.data();
    std::string_view text(static_cast<const char*>(data.data()), data.size());
    if (text.find(phase_.must_contain) == std::string_view::npos) ++phase_.wrong;
    if (++phase_.received == phase_.expected) {
      phase_.done = now;
      phase_.changed.notify_all();
    }
  }

  net::io_context& ioc_;
  std::uint16_t port_;
  Phase& phase_;
  std::vector<std::unique_ptr<Socket>> sockets_;
  std::atomic<std::size_t> next_{0}, opened_{0}, failed_{0};
  std::mutex wake_mutex_;
  std::condition_variable wake_cv_;
  bool waking_ = false;
  std::vector<Clock::time_point> wake_replies_;
};

// The floor, measured in the same run: one thread writes a frame of `frame` bytes with plain
// blocking writes to n loopback TCP sockets; a client thread (asio, like the WebSocket
// clients) reads them. Returns, per round, the time until all n have the whole frame.
std::vector<double> floor_fanout(std::size_t n, std::size_t frame, int rounds) {
  net::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  std::vector<tcp::socket> writers, readers;
  writers.reserve(n);
  readers.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    readers.emplace_back(ioc).connect(acceptor.local_endpoint());
    writers.push_back(acceptor.accept());
    writers.back().set_option(tcp::no_delay(true));
  }
  std::vector<std::vector<char>> buffers(n, std::vector<char>(frame));
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t received = 0;
  Clock::time_point last;
  std::function<void(std::size_t)> arm = [&](std::size_t i) {
    net::async_read(readers[i], net::buffer(buffers[i]), [&, i](beast::error_code ec, std::size_t) {
      if (ec) return;
      {
        std::lock_guard lock(mutex);
        if (++received == n) {
          last = Clock::now();
          cv.notify_all();
        }
      }
      arm(i);
    });
  };
  for (std::size_t i = 0; i < n; ++i) arm(i);
  auto work = net::make_work_guard(ioc);
  std::thread client([&] { ioc.run(); });
  std::string payload(frame, 'x');
  std::vector<double> out;
  for (int r = 0; r < rounds; ++r) {
    {
      std::lock_guard lock(mutex);
      received = 0;
    }
    auto start = Clock::now();
    for (auto& w : writers) net::write(w, net::buffer(payload));
    std::unique_lock lock(mutex);
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return received == n; })) break;
    out.push_back(ms(last - start));
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  work.reset();
  ioc.stop();
  client.join();
  return out;
}

json health(std::uint16_t port) {
  return json::parse(cairn::testing::http_get(port, "/healthz").body, nullptr, false);
}

bool wait_hibernated(std::uint16_t port, std::size_t sockets, std::chrono::seconds limit) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    auto h = health(port);
    if (h.is_object() && h["live_instances"] == 0 && h["websockets"] == sockets) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cairn hibernation benchmark: memory per hibernated socket, wake and fan-out latency"};
  std::string server = CAIRN_BENCH_SERVER_PATH;
  std::size_t sockets = 10'000;
  int flights = 100;
  int rounds = 300;
  std::size_t io_threads = 1;
  // Long enough that no flight is evicted during the fan-out rounds (which then measure the
  // broadcast alone, not a wake), short enough that hibernating does not take long.
  double idle_timeout = 5.0;
  std::string durability = "full";
  app.add_option("--server", server, "the cairn-server binary")->capture_default_str();
  app.add_option("--sockets", sockets, "WebSockets to open in all")->check(CLI::Range(1, 18'000))->capture_default_str();
  app.add_option("--flights", flights, "flights they are spread over")->check(CLI::Range(1, 10'000))->capture_default_str();
  app.add_option("--rounds", rounds, "bookings for the fan-out measurement")->check(CLI::Range(1, 10'000))->capture_default_str();
  app.add_option("--io-threads", io_threads, "the server's --io-threads")->capture_default_str();
  cairn::cli::add_duration(app, "--idle-timeout", idle_timeout, "the server's --idle-timeout")->capture_default_str();
  app.add_option("--durability", durability, "the server's --durability (full fsyncs every booking)")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (static_cast<std::size_t>(flights) > sockets) {
    std::fprintf(stderr, "--flights must not exceed --sockets\n");
    return 2;
  }
  cairn::raise_descriptor_limit();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines show at once, also in a pipe

  cairn::testing::TempDir data;
  cairn::testing::ServerProcess process({server, "--host", "127.0.0.1", "--port", "0", "--data-dir",
                                         data.path().string(), "--log-level", "warn", "--idle-timeout",
                                         std::to_string(idle_timeout), "--io-threads",
                                         std::to_string(io_threads), "--max-live-instances",
                                         std::to_string(std::max(flights, 1)), "--durability",
                                         durability,
                                         // Room for the bench's own requests beside the sockets
                                         // (at the default 10,000 its /healthz was refused).
                                         "--max-connections", std::to_string(sockets + 100)});
  auto port = process.port();
  std::printf("cairn-server pid %d on port %u: %zu sockets over %d flights, io-threads %zu, durability %s\n",
              static_cast<int>(process.pid()), static_cast<unsigned>(port), sockets, flights, io_threads,
              durability.c_str());

  // Every flight exists and has hibernated once, so what grows below is the sockets alone.
  for (int f = 0; f < flights; ++f) cairn::testing::http_get(port, "/seats?flightId=bench-" + std::to_string(f));
  if (!wait_hibernated(port, 0, std::chrono::seconds(60))) {
    std::fprintf(stderr, "the flights did not hibernate\n");
    return 1;
  }
  long rss_before = cairn::testing::rss_kib(process.pid());

  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });
  Phase phase;
  Fleet fleet(ioc, port, phase);
  int status = 0;
  auto opened_at = Clock::now();
  if (!fleet.open(sockets, flights, std::chrono::seconds(120))) {
    std::fprintf(stderr, "only %zu of %zu sockets opened\n", sockets - fleet.failed(), sockets);
    status = 1;
  }
  std::printf("opened %zu sockets in %.1f s\n", sockets, ms(Clock::now() - opened_at) / 1000);
  if (status == 0 && !wait_hibernated(port, sockets, std::chrono::seconds(60))) {
    std::fprintf(stderr, "the flights did not hibernate with their sockets open\n");
    status = 1;
  }
  long rss_after = cairn::testing::rss_kib(process.pid());
  double per_socket = static_cast<double>(rss_after - rss_before) * 1024.0 / static_cast<double>(sockets);
  std::printf("server RSS: %.1f MiB before, %.1f MiB with %zu hibernated sockets -> %.0f bytes (%.2f KiB) per socket\n",
              static_cast<double>(rss_before) / 1024, static_cast<double>(rss_after) / 1024, sockets, per_socket,
              per_socket / 1024);

  if (status == 0) {
    auto wake_start = Clock::now();
    auto wakes = fleet.one_message_per_flight(flights, R"({"type":"getSeats"})", std::chrono::seconds(60));
    double all = ms(Clock::now() - wake_start);
    std::printf("wake %d hibernated flights, one message each: p50 %.2f ms, p99 %.2f ms, all in %.2f ms (%zu answered)\n",
                flights, percentile(wakes, 50), percentile(wakes, 99), all, wakes.size());
    if (wakes.size() != static_cast<std::size_t>(flights)) status = 1;
  }

  if (status == 0) {
    std::size_t per_flight = sockets / static_cast<std::size_t>(flights);
    cairn::testing::HttpClient http(port);
    std::vector<double> fanout;
    std::size_t wrong = 0;
    // Each flight's booking moves between 1A and 1B: a move needs the booking's token.
    std::vector<std::string> tokens(static_cast<std::size_t>(flights));
    for (int r = 0; r < rounds; ++r) {
      int f = r % flights;
      // Alternate one name between 1A and 1B: every booking succeeds and changes the state.
      std::string seat = (r / flights) % 2 == 0 ? "1B" : "1A";
      std::string name = "bench-" + std::to_string(f);
      std::size_t expected = per_flight + (static_cast<std::size_t>(f) < sockets % static_cast<std::size_t>(flights) ? 1 : 0);
      {
        std::lock_guard lock(phase.mutex);
        phase.flight = f;
        phase.expected = expected;
        phase.received = 0;
        phase.must_contain = R"({"occupant":")" + name + R"(","seatNumber":")" + seat + R"(","state":"booked"})";
      }
      auto sent = Clock::now();
      json booking{{"seatNumber", seat}, {"name", name}};
      if (!tokens[static_cast<std::size_t>(f)].empty()) booking["bookingToken"] = tokens[static_cast<std::size_t>(f)];
      auto reply = http.request(boost::beast::http::verb::post, "/book-seat?flightId=" + name, booking.dump());
      if (reply.status != 200) {
        std::fprintf(stderr, "booking failed: %d %s\n", reply.status, reply.body.c_str());
        status = 1;
        break;
      }
      tokens[static_cast<std::size_t>(f)] = json::parse(reply.body, nullptr, false).value("bookingToken", std::string());
      std::unique_lock lock(phase.mutex);
      if (!phase.changed.wait_until(lock, Clock::now() + std::chrono::seconds(10),
                                    [&] { return phase.received >= phase.expected; })) {
        std::fprintf(stderr, "round %d: %zu of %zu sockets got the broadcast\n", r, phase.received, expected);
        status = 1;
        break;
      }
      fanout.push_back(ms(phase.done - sent));
      phase.flight = -1;
      wrong = phase.wrong;
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (static_cast<int>(fanout.size()) > flights) {
      // Each flight's first booking is its first write since the wake (a cold WAL and page
      // cache); the later ones show the steady state.
      std::vector<double> first(fanout.begin(), fanout.begin() + flights);
      std::vector<double> later(fanout.begin() + flights, fanout.end());
      std::printf("  first booking of each flight after its wake: p50 %.2f ms, p99 %.2f ms; later bookings: "
                  "p50 %.2f ms, p99 %.2f ms\n",
                  percentile(first, 50), percentile(first, 99), percentile(later, 50), percentile(later, 99));
    }
    auto stats = cairn::testing::HttpClient(port).request(boost::beast::http::verb::get, "/healthz");
    std::printf("broadcast to the %zu sockets of a flight (%zu bookings): p50 %.2f ms, p99 %.2f ms, max %.2f ms "
                "(then live instances: %s)\n",
                per_flight, fanout.size(), percentile(fanout, 50), percentile(fanout, 99),
                fanout.empty() ? 0.0 : *std::max_element(fanout.begin(), fanout.end()),
                json::parse(stats.body, nullptr, false).value("live_instances", json()).dump().c_str());
    if (wrong != 0) {
      std::fprintf(stderr, "%zu broadcasts did not carry the booking\n", wrong);
      status = 1;
    }
    // The same frame's size: the seat array plus a 4-byte WebSocket header.
    std::size_t frame = cairn::testing::http_get(port, "/seats?flightId=bench-0").body.size() + 4;
    auto floor = floor_fanout(per_flight, frame, rounds);
    double floor_p50 = percentile(floor, 50);
    std::printf("floor, same run: plain writes of a %zu-byte frame to %zu loopback sockets: p50 %.2f ms, "
                "p99 %.2f ms -> cairn/floor at p50 %.2f, at p99 %.2f\n",
                frame, per_flight, floor_p50, percentile(floor, 99),
                floor_p50 > 0 ? percentile(fanout, 50) / floor_p50 : 0.0,
                percentile(floor, 99) > 0 ? percentile(fanout, 99) / percentile(floor, 99) : 0.0);
  }

  fleet.close_all();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  work.reset();
  ioc.stop();
  io.join();
  process.stop();
  if (status != 0) std::fprintf(stderr, "cairn-bench-hibernation: the workload failed (above): its figures mean nothing\n");
  return status;
}
