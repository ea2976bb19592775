// TestRuntime and TestSocket: blocking calls over a real in-process Runtime.
#include "cairn/testing.hpp"

#include <stdlib.h>

#include <future>
#include <stdexcept>
#include <thread>

namespace cairn::testing {
namespace {

template <class T>
T wait(std::future<T>& future) {
  if (future.wait_for(reply_deadline) != std::future_status::ready) {
    throw std::runtime_error("the actor did not answer within " +
                             std::to_string(reply_deadline.count()) + " s");
  }
  return future.get();
}

}  // namespace

Response fetch(const Stub& stub, Request request) {
  auto promise = std::make_shared<std::promise<Response>>();
  auto future = promise->get_future();
  stub.fetch(std::move(request), [promise](Response r) { promise->set_value(std::move(r)); });
  return wait(future);
}

Result<nlohmann::json> call(const Stub& stub, std::string method, nlohmann::json args) {
  auto promise = std::make_shared<std::promise<Result<nlohmann::json>>>();
  auto future = promise->get_future();
  stub.call(std::move(method), std::move(args),
            [promise](Result<nlohmann::json> r) { promise->set_value(std::move(r)); });
  return wait(future);
}

std::vector<std::string> TestSocket::messages() const {
  std::lock_guard lock(mutex_);
  return messages_;
}
std::vector<int> TestSocket::closes() const {
  std::lock_guard lock(mutex_);
  return closes_;
}
void TestSocket::send(std::shared_ptr<const std::string> message, bool) {
  std::lock_guard lock(mutex_);
  messages_.push_back(*message);
}
void TestSocket::close(int code, std::string) {
  std::lock_guard lock(mutex_);
  closes_.push_back(code);
}

TestRuntime::TestRuntime(std::function<Registry()> classes, RuntimeOptions options)
    : classes_(std::move(classes)), options_(std::move(options)) {
  std::string pattern = (std::filesystem::temp_directory_path() / "cairn-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("cannot make a temporary directory");
  dir_ = pattern;
  clock_ = std::make_shared<ManualClock>(std::chrono::system_clock::now());
  start();
}

TestRuntime::~TestRuntime() {
  runtime_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void TestRuntime::start() {
  RuntimeOptions options = options_;
  options.data_dir = dir_;
  options.clock = clock_;
  runtime_ = std::make_unique<Runtime>(classes_(), options);
}

void TestRuntime::restart() {
  runtime_.reset();
  start();
}

Stub TestRuntime::stub(std::string_view binding, std::string_view name) {
  auto stub = runtime_->get(binding, name);
  if (!stub) throw std::invalid_argument(stub.error().message);
  return *stub;
}

Result<nlohmann::json> TestRuntime::call(std::string_view binding, std::string_view name,
                                         std::string method, nlohmann::json args) {
  return testing::call(stub(binding, name), std::move(method), std::move(args));
}

Response TestRuntime::fetch(std::string_view binding, std::string_view name, std::string method,
                            std::string target, std::string body) {
  Request request{std::move(method), std::move(target), {}, std::move(body), 0};
  if (!request.body.empty()) request.headers.push_back({"Content-Type", "application/json"});
  return testing::fetch(stub(binding, name), std::move(request));
}

std::shared_ptr<TestSocket> TestRuntime::connect(std::string_view binding, std::string_view name,
                                                 std::string target) {
  auto socket = std::make_shared<TestSocket>();
  Request request{"GET", std::move(target), {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}}, {}, 0};
  socket->id_ = request.websocket = runtime_->reserve_socket(socket);
  auto response = testing::fetch(stub(binding, name), std::move(request));
  if (response.status != 101) {
    runtime_->release_socket(socket->id_);
    throw std::runtime_error("the actor answered " + std::to_string(response.status) +
                             " to the upgrade: " + response.body);
  }
  return socket;
}

void TestRuntime::send(const TestSocket& socket, std::string message, bool binary) {
  runtime_->socket_message(socket.id(), std::move(message), binary);
}

void TestRuntime::close(const TestSocket& socket, int code, std::string reason) {
  runtime_->socket_closed(socket.id(), code, std::move(reason));
}

void TestRuntime::advance(Clock::duration by) {
  clock_->advance(by);
  runtime_->fire_due_alarms();
  runtime_->evict_idle();
}

bool TestRuntime::evict(std::string_view binding, std::string_view name) {
  auto evicted = runtime_->evict(binding, name);
  if (!evicted) throw std::invalid_argument(evicted.error().message);
  if (!*evicted) return false;
  auto until = std::chrono::steady_clock::now() + reply_deadline;
  while (runtime_->stats().stopping_instances > 0) {
    if (std::chrono::steady_clock::now() > until) throw std::runtime_error("the eviction did not finish");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace cairn::testing
