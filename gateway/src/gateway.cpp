// Gateway: the listener, the I/O threads and an orderly stop.
#include "cairn/gateway/gateway.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <algorithm>
#include <chrono>
#include <future>
#include <optional>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <thread>

#include "http_session.hpp"
#include "websocket_session.hpp"

namespace cairn::gateway {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Gateway::Impl {
  Impl(Runtime& runtime, GatewayOptions options)
      : shared(std::make_shared<SharedState>(runtime, std::move(options))),
        acceptor(net::make_strand(ioc)) {}

  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        // EMFILE and friends: keep accepting; the failure is the client's connection only.
        spdlog::warn("accept failed: {}", ec.message());
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<HttpSession>(std::move(socket), shared)->run();
      }
      do_accept();
    });
  }

  net::io_context ioc;
  std::shared_ptr<SharedState> shared;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  // Keeps the I/O threads running while no connection is open and the acceptor is closed.
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  bool accepting = true;
  bool stopped = false;
};

Gateway::Gateway(Runtime& runtime, GatewayOptions options)
    : impl_(std::make_unique<Impl>(runtime, std::move(options))) {
  const auto& opts = impl_->shared->options;
  beast::error_code ec;
  auto address = net::ip::make_address(opts.host, ec);
  if (ec) throw std::runtime_error("invalid --host '" + opts.host + "': " + ec.message());
  tcp::endpoint endpoint(address, opts.port);
  auto& acceptor = impl_->acceptor;
  auto check = [&](const char* what) {
    if (ec) {
      throw std::runtime_error(std::string("cannot ") + what + " " + opts.host + ":" +
                               std::to_string(opts.port) + ": " + ec.message());
    }
  };
  acceptor.open(endpoint.protocol(), ec);
  check("open");
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  check("configure");
  acceptor.bind(endpoint, ec);
  check("bind");
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  check("listen on");
}

Gateway::~Gateway() { stop(); }

std::uint16_t Gateway::port() const {
  beast::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void Gateway::start() {
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] { impl->do_accept(); });
  impl_->work.emplace(impl_->ioc.get_executor());
  std::size_t n = std::max<std::size_t>(1, impl_->shared->options.io_threads);
  for (std::size_t i = 0; i < n; ++i) {
    impl_->threads.emplace_back([impl = impl_.get()] { impl->ioc.run(); });
  }
}

void Gateway::stop_accepting() {
  if (!impl_->accepting) return;
  impl_->accepting = false;
  std::promise<void> done;
  auto closed = done.get_future();
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get(), &done] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    done.set_value();
  });
  if (!impl_->threads.empty()) {
    closed.wait();
  } else {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  }
}

void Gateway::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (!impl_->threads.empty()) {
    stop_accepting();
    // Say goodbye to every WebSocket (1001: going away), then give the handshakes a moment.
    {
      std::lock_guard lock(impl_->shared->mutex);
      for (auto& [id, weak] : impl_->shared->sockets) {
        if (auto session = weak.lock()) {
          net::post(session->executor(), [session] { session->close(1001, "server shutting down"); });
        }
      }
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(impl_->shared->mutex);
        if (impl_->shared->sockets.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& thread : impl_->threads) thread.join();
  impl_->threads.clear();
  // Sessions still held by abandoned handlers die with them; release what they reserved.
  std::vector<SocketId> left;
  {
    std::lock_guard lock(impl_->shared->mutex);
    for (auto& [id, weak] : impl_->shared->sockets) left.push_back(id);
    impl_->shared->sockets.clear();
  }
  for (SocketId id : left) impl_->shared->runtime.release_socket(id);
}

}  // namespace cairn::gateway
