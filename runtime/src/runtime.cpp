// Runtime and Stub: the public face of RuntimeCore.
#include "cairn/runtime.hpp"

#include "data_layout.hpp"
#include "runtime_core.hpp"

namespace cairn {

Runtime::Runtime(Registry registry, RuntimeOptions options)
    : core_(std::make_shared<detail::RuntimeCore>(std::move(registry), std::move(options))) {}

Runtime::~Runtime() { shutdown(); }

Result<Stub> Runtime::get(std::string_view binding, std::string_view name) const {
  if (core_->registry.find(binding) == nullptr) {
    return fail(Code::not_found, "no actor class is bound to '" + std::string(binding) + "'");
  }
  auto id = ActorId::make(binding, name);
  if (!id) return id.error();
  return Stub(core_, std::move(*id));
}

SocketId Runtime::reserve_socket(std::shared_ptr<SocketSink> sink) {
  return core_->sockets.reserve(std::move(sink));
}

void Runtime::release_socket(SocketId id) { core_->sockets.remove(id); }

SocketFlow Runtime::socket_message(SocketId id, std::string message, bool binary) {
  return core_->deliver_socket_message(id, std::move(message), binary);
}

void Runtime::socket_closed(SocketId id, int code, std::string reason) {
  core_->deliver_socket_event(SocketEvent{id, SocketEvent::Kind::close, std::move(reason), false, code});
}

void Runtime::socket_error(SocketId id, std::string error) {
  core_->deliver_socket_event(SocketEvent{id, SocketEvent::Kind::error, std::move(error), false, 0});
}

std::size_t Runtime::evict_idle() { return core_->evict_idle(); }

Result<bool> Runtime::evict(std::string_view binding, std::string_view name) {
  auto stub = get(binding, name);
  if (!stub) return stub.error();
  return core_->evict(stub->id());
}

std::size_t Runtime::evict_shard(unsigned shard) { return core_->evict_shard(shard); }
Result<std::size_t> Runtime::replace_class(const std::string& binding, ActorFactory factory) {
  return core_->replace_class(binding, std::move(factory));
}
std::size_t Runtime::shard_instances(unsigned shard) const { return core_->shard_instances(shard); }
std::filesystem::path Runtime::shard_dir(unsigned shard) const {
  return detail::shard_dir(core_->options.data_dir, shard);
}
nlohmann::json Runtime::shard_indexes(unsigned shard) const { return core_->shard_indexes(shard); }
void Runtime::adopt_shard_indexes(const nlohmann::json& rows) { core_->adopt_shard_indexes(rows); }
void Runtime::forget_shard_indexes(unsigned shard) { core_->forget_shard_indexes(shard); }
nlohmann::json Runtime::adopt_shard_files(unsigned shard) { return core_->adopt_shard_files(shard); }
std::size_t Runtime::close_shard_sockets(unsigned shard, int code, const std::string& reason) {
  return core_->close_shard_sockets(shard, code, reason);
}

RuntimeStats Runtime::stats() const { return core_->stats(); }

void Runtime::write_metrics(metrics::TextWriter& out) const { core_->write_metrics(out); }

std::size_t Runtime::fire_due_alarms() { return core_->fire_due_alarms(); }

void Runtime::shutdown() { core_->shutdown(); }

void Stub::fetch(Request request, FetchCallback done) const {
  auto reply = core_->replies().add(std::make_shared<PendingReply>(std::move(done)));
  core_->deliver(id_, Event{FetchEvent{std::move(request)}, reply});
}

void Stub::call(std::string method, nlohmann::json args, CallCallback done) const {
  core_->call_actor(id_, std::move(method), std::move(args), std::move(done));
}

void Stub::call_here(std::string method, nlohmann::json args, CallCallback done, TraceContext trace) const {
  core_->call_here(id_, std::move(method), std::move(args), std::move(done), std::move(trace));
}

}  // namespace cairn
