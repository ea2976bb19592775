// HttpReplicator's catch-ups against real sockets on loopback: a follower that cannot be
// reached is tried less and less often, and a new follower is tried at once.
#include "replicator.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "temp_dir.hpp"

using namespace std::chrono_literals;
using boost::asio::ip::tcp;
using cairn::gateway::HttpReplicator;
using cairn::gateway::HttpReplicatorOptions;

namespace {

// A listener on loopback that counts the connections it is offered and closes each.
struct CountingListener {
  boost::asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)};
  std::atomic<int> accepted{0};
  std::thread thread;
  CountingListener() {
    accept();
    thread = std::thread([this] { io.run(); });
  }
  ~CountingListener() {
    io.stop();
    thread.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()); }
  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      ++accepted;
      boost::system::error_code ignored;
      socket.close(ignored);
      accept();
    });
  }
};

// A loopback port nothing listens on (bound once, then closed).
std::string refusing_address() {
  boost::asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  auto port = acceptor.local_endpoint().port();
  acceptor.close();
  return "127.0.0.1:" + std::to_string(port);
}

}  // namespace

TEST_CASE("replicator: a shard given a new follower tries it at once and not after the backoff its dead one earned") {
  cairn::testing::TempDir dir;
  std::mutex mutex;
  HttpReplicatorOptions::Follower follower{"dead", refusing_address(), false};
  HttpReplicatorOptions options;
  options.data_dir = dir.path();
  options.follower = [&](unsigned) -> std::optional<HttpReplicatorOptions::Follower> {
    std::lock_guard lock(mutex);
    return follower;
  };
  options.epoch = [](unsigned) -> std::optional<std::int64_t> { return 1; };
  options.record = [](unsigned, const std::string&, bool) -> cairn::Result<bool> { return true; };
  options.timeout = 500ms;
  options.retry_after = 100ms;
  HttpReplicator replicator(options);
  constexpr unsigned shard = 7;

  // The dead follower: tried again after 100, 200, 400, 800 and 1,600 ms; after its sixth
  // failure the wait is 3.2 s.
  auto started = std::chrono::steady_clock::now();
  while (replicator.stats().failed < 6 && std::chrono::steady_clock::now() - started < 20s) {
    replicator.catch_up(shard);
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(replicator.stats().failed == 6);
  auto dead_for = std::chrono::steady_clock::now() - started;
  CHECK(dead_for >= 3000ms);  // it was backed off (not tried every 10 ms)

  // The coordinator gives the shard a new follower: it is tried within a pass or two.
  CountingListener live;
  {
    std::lock_guard lock(mutex);
    follower = {"live", live.address(), false};
  }
  auto switched = std::chrono::steady_clock::now();
  while (live.accepted.load() == 0 && std::chrono::steady_clock::now() - switched < 10s) {
    replicator.catch_up(shard);
    std::this_thread::sleep_for(10ms);
  }
  auto waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - switched).count();
  MESSAGE("the new follower was first tried after " << waited << " s");
  CHECK(live.accepted.load() > 0);
  CHECK(waited < 1.0);  // not the 3.2 s the dead one earned
}
