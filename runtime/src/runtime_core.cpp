// RuntimeCore: directory of live hosts, lazy spawn, data layout, shutdown.
#include "runtime_core.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <stdexcept>

#include "host.hpp"

namespace cairn::detail {
namespace {

// Makes a new directory entry durable: fsync the directory that holds it.
void sync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

RuntimeCore::RuntimeCore(Registry registry_in, RuntimeOptions options_in)
    : registry(std::move(registry_in)), options(std::move(options_in)) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec || !std::filesystem::is_directory(options.data_dir)) {
    throw std::runtime_error("cannot use data directory " + options.data_dir.string() + ": " +
                             (ec ? ec.message() : "not a directory"));
  }
  if (::access(options.data_dir.c_str(), W_OK) != 0) {
    throw std::runtime_error("data directory " + options.data_dir.string() + " is not writable");
  }
  config_.set("scheduler.max-threads",
              static_cast<caf::config_value::integer>(options.threads == 0 ? 1 : options.threads));
  system_ = std::make_unique<caf::actor_system>(config_);
}

RuntimeCore::~RuntimeCore() { shutdown(); }

std::filesystem::path RuntimeCore::database_path(const ActorId& id) {
  auto dir = options.data_dir / id.binding();
  {
    std::lock_guard lock(mutex_);
    if (binding_dirs_.insert(id.binding()).second) {
      std::filesystem::create_directories(dir);
      sync_directory(options.data_dir);
    }
  }
  return dir / (id.hex() + ".sqlite");
}

void RuntimeCore::deliver(const ActorId& id, Event event) {
  caf::actor host;
  std::unique_lock lock(mutex_);
  if (stopping_) {
    lock.unlock();
    if (event.reply) event.reply->fail(Error{Code::unavailable, "the runtime is shutting down"});
    return;
  }
  auto it = live_.find(id.hex());
  if (it == live_.end()) {
    const ActorFactory* factory = registry.find(id.binding());
    if (factory == nullptr) {
      lock.unlock();
      if (event.reply) {
        event.reply->fail(Error{Code::not_found, "no actor class is bound to " + id.binding()});
      }
      return;
    }
    it = live_.emplace(id.hex(), system_->spawn<Host>(this, id, factory)).first;
  }
  host = it->second;
  lock.unlock();
  caf::anon_send(host, std::move(event));
}

void RuntimeCore::deliver_socket_event(SocketEvent event) {
  auto info = sockets.find(event.socket);
  if (!info) return;
  if (!info->owner) {  // never accepted: nobody to tell
    if (event.kind != SocketEvent::Kind::message) sockets.remove(event.socket);
    return;
  }
  deliver(*info->owner, Event{std::move(event), nullptr});
}

void RuntimeCore::shutdown() {
  std::unordered_map<std::string, caf::actor> hosts;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    hosts.swap(live_);
  }
  // Each host commits its open batch (releasing its answers) and closes its database.
  for (auto& [hex, host] : hosts) caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
  hosts.clear();
  system_->await_all_actors_done();
}

}  // namespace cairn::detail
