#include "handoff.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>

#include "peer.hpp"

namespace cairn::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using nlohmann::json;
using Steady = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

std::string four_digits(unsigned shard) {
  char text[16];
  std::snprintf(text, sizeof text, "%04u", shard);
  return text;
}

// Durability by hand: the standard library has no fsync.
void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0)
    throw std::runtime_error("cannot fsync " + path.string() + ": " + std::strerror(saved));
}

void write_durably(const fs::path& file, const std::string& bytes) {
  fs::create_directories(file.parent_path());
  auto part = file;
  part += ".part";
  {
    std::ofstream out(part, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + part.string());
  }
  fsync_path(part, false);
  fs::rename(part, file);
  fsync_path(file.parent_path(), true);
}

// A consistent copy of the database at `file` (SQLite's online backup into memory, then
// its bytes): whatever its WAL holds is in the copy.
std::string snapshot(const fs::path& file) {
  sqlite3* source = nullptr;
  sqlite3* copy = nullptr;
  auto fail = [&](const std::string& what) {
    std::string message = what + " " + file.string() + ": " +
                          (copy != nullptr     ? sqlite3_errmsg(copy)
                           : source != nullptr ? sqlite3_errmsg(source)
                                               : "");
    sqlite3_close(copy);
    sqlite3_close(source);
    throw std::runtime_error(message);
  };
  if (sqlite3_open_v2(file.c_str(), &source, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK)
    fail("cannot open");
  if (sqlite3_open(":memory:", &copy) != SQLITE_OK) fail("cannot open memory for");
  sqlite3_backup* backup = sqlite3_backup_init(copy, "main", source, "main");
  if (backup == nullptr) fail("cannot back up");
  int rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) fail("cannot back up");
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(copy, "main", &size, 0);
  if (bytes == nullptr) fail("cannot serialize");
  std::string out(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(size));
  sqlite3_free(bytes);
  sqlite3_close(copy);
  sqlite3_close(source);
  return out;
}

// Names from another node, checked before they become paths (no std::regex: GCC 12 warns
// falsely inside it at -O1, which the sanitizer build uses).
bool all_of_set(const std::string& text, std::string_view allowed_punctuation) {
  return std::all_of(text.begin(), text.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           allowed_punctuation.find(c) != std::string_view::npos;
  });
}
bool valid_move_id(const std::string& id) {
  return !id.empty() && id.size() <= 100 && all_of_set(id, "_.-") && id != "." && id != "..";
}
bool valid_binding(const std::string& binding) {
  // Registry::add's rule: 1 to 64 of [A-Za-z0-9_-], not starting with '_'.
  return !binding.empty() && binding.size() <= 64 && binding.front() != '_' &&
         all_of_set(binding, "_-");
}
bool valid_file(const std::string& name) {
  const std::string suffix = ".sqlite";
  if (name.size() != 64 + suffix.size() || !name.ends_with(suffix)) return false;
  return std::all_of(name.begin(), name.begin() + 64,
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string random_hex() {
  std::random_device device;
  std::uniform_int_distribution<unsigned> byte(0, 255);
  std::string out;
  for (int i = 0; i < 8; ++i) {
    char text[4];
    std::snprintf(text, sizeof text, "%02x", byte(device));
    out += text;
  }
  return out;
}

}  // namespace

std::string data_identity(const fs::path& data_dir) {
  auto file = data_dir / "_cairn" / "identity";
  std::ifstream in(file);
  std::string id;
  if (in >> id && id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos)
    return id;
  if (fs::exists(file))
    throw std::runtime_error(file.string() + " is not a data directory identity: move it away");
  id = random_hex() + random_hex();
  write_durably(file, id + "\n");
  return id;
}

ShardMover::ShardMover(Runtime& runtime, cluster::Membership& membership, fs::path data_dir,
                       Options options)
    : runtime_(runtime),
      membership_(membership),
      data_dir_(std::move(data_dir)),
      options_(std::move(options)) {
  std::error_code ignored;
  fs::remove_all(data_dir_ / "_cairn" / "incoming", ignored);
  fs::remove_all(data_dir_ / "_cairn" / "trash", ignored);
  thread_ = std::thread([this] { loop(); });
}

ShardMover::~ShardMover() { stop(); }

void ShardMover::stop() {
  leaving_.store(true);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ShardMover::loop() {
  bool worked = false;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!worked) wake_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    // One group per round, from moves read afresh: a target that left or a move dropped
    // meanwhile is seen before the next group starts.
    auto now = Steady::now();
    std::map<std::string, std::vector<unsigned>> by_target;
    for (const auto& move : membership_.moves_to_make()) {
      if (retry_at_[move.shard] <= now) by_target[move.to].push_back(move.shard);
    }
    worked = false;
    for (auto& [to, shards] : by_target) {
      if (shards.size() > 24) shards.resize(24);
      move_group(to, shards);
      worked = true;
      break;
    }
    lock.lock();
  }
}

void ShardMover::owner_changed(unsigned shard) {
  // A shard handed away stays closed (a late watch event could show this node at the old
  // epoch for a moment); owned again at another epoch (moved back), it opens.
  auto epoch = membership_.epoch(shard);
  if (epoch && *epoch != handed_epoch_[shard].load() && !busy_[shard].load())
    closed_[shard].store(false);
}

bool ShardMover::move_group(const std::string& to, const std::vector<unsigned>& shards) {
  auto started = Steady::now();
  const std::string& me = membership_.options().node_id;
  std::string move = me + "-" + random_hex();
  std::optional<Peer> peer;
  for (unsigned s : shards) busy_[s].store(true);
  struct Idle {
    ShardMover& mover;
    const std::vector<unsigned>& shards;
    ~Idle() {
      for (unsigned s : shards) mover.busy_[s].store(false);
    }
  } idle{*this, shards};
  // Before the hand-over's transaction: the shards stay here, open again; the move is
  // dropped (asked again, perhaps elsewhere) and these shards wait a while first.
  auto fail = [&](const std::string& why) {
    spdlog::warn("cluster: moving {} shards to {} failed: {}; they stay here", shards.size(), to,
                 why);
    for (unsigned s : shards) {
      closed_[s].store(false);
      auto wait = std::min<Steady::duration>(
          std::chrono::seconds(30),
          std::max<Steady::duration>(std::chrono::seconds(1), 2 * backoff_[s]));
      backoff_[s] = wait;
      retry_at_[s] = Steady::now() + wait;
    }
    if (peer) {  // what the target stored or promoted goes (best effort; it also clears old ones itself)
      (void)peer->send(http::verb::post, std::string(handoff_path_prefix) + "abort?move=" + move,
                       {}, options_.token, Steady::now() + std::chrono::seconds(2));
    }
    membership_.drop_moves(shards);
    groups_failed_.fetch_add(1);
    return false;
  };
  auto nodes = membership_.nodes();
  auto target = nodes.find(to);
  if (target == nodes.end()) return fail("the node left");
  auto endpoint = cluster::parse_endpoints(target->second);
  if (!endpoint.ok()) return fail("its address " + target->second + " is not http://HOST:PORT");
  // The target answers at all before anything closes here.
  peer.emplace(endpoint.value().front().host, endpoint.value().front().port);
  auto probe = peer->send(http::verb::get, "/healthz", {}, options_.token,
                          Steady::now() + std::chrono::seconds(2));
  if (!probe.ok() || probe.value().result_int() != 200) {
    peer.reset();
    return fail(probe.ok() ? "its /healthz answered " + std::to_string(probe.value().result_int())
                           : probe.error().message);
  }

  // 1. Closed to new events, drained, every instance closed. Evicted again each round: an
  // instance waiting to start (under the cap, or behind a closing one) starts meanwhile.
  for (unsigned s : shards) closed_[s].store(true);
  auto drained_by = started + options_.drain_timeout;
  for (;;) {
    for (unsigned s : shards) runtime_.evict_shard(s);
    bool open = std::any_of(shards.begin(), shards.end(),
                            [&](unsigned s) { return runtime_.shard_instances(s) > 0; });
    if (!open) break;
    if (Steady::now() >= drained_by)
      return fail("their instances did not close within the drain timeout");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  // 2. Replicated shards whose follower is the target: promoted there once it holds all that
  // was queued here. The others (and any the follower could not be brought level for): files,
  // then the commit with the index rows.
  auto deadline = Steady::now() + options_.transfer_timeout;
  std::vector<unsigned> copied;
  json promote{{"move", move}, {"from", me}, {"shards", json::array()}};
  for (unsigned s : shards) {
    auto follower = options_.settle ? membership_.follower(s) : std::nullopt;
    if (!follower || follower->node != to || !follower->in_sync) {
      copied.push_back(s);
      continue;
    }
    auto at = options_.settle(s);
    if (!at.ok()) {
      spdlog::warn("cluster: shard {} is copied to {}: its follower there cannot be brought level: {}", s, to,
                   at.error().message);
      copied.push_back(s);
      continue;
    }
    promote["shards"].push_back(
        {{"shard", s}, {"epoch", at.value().epoch}, {"seed", at.value().seed}, {"index", at.value().index}});
  }
  std::size_t promoted = promote["shards"].size();
  if (promoted > 0) {
    auto answer = peer->send(http::verb::post, std::string(handoff_path_prefix) + "promote", promote.dump(),
                             options_.token, deadline);
    if (!answer.ok()) return fail(answer.error().message);
    if (answer.value().result_int() != 200) {
      return fail("it refused to promote its copies: " + std::to_string(answer.value().result_int()) + " " +
                  answer.value().body());
    }
  }
  json commit{{"move", move}, {"from", me}, {"shards", json::array()}};
  std::uint64_t bytes = 0;
  try {
    for (unsigned s : copied) {
      json files = json::array();
      auto dir = runtime_.shard_dir(s);
      std::error_code ec;
      if (fs::is_directory(dir, ec)) {
        for (const auto& binding : fs::directory_iterator(dir)) {
          if (!binding.is_directory()) continue;
          for (const auto& file : fs::directory_iterator(binding.path())) {
            auto name = file.path().filename().string();
            if (!valid_file(name)) continue;  // -wal, -shm: the snapshot holds what they had
            auto content = snapshot(file.path());
            if (content.size() > max_handoff_file_bytes) {
              return fail(file.path().string() + " is over the hand-off's limit of 1 GiB");
            }
            bytes += content.size();
            std::string target_path = std::string(handoff_path_prefix) + "file?move=" + move +
                                      "&shard=" + std::to_string(s) +
                                      "&binding=" + binding.path().filename().string() +
                                      "&file=" + name;
            auto sent = peer->send(http::verb::put, target_path, std::move(content), options_.token,
                                   deadline);
            if (!sent.ok()) return fail(sent.error().message);
            if (sent.value().result_int() != 200) {
              return fail("it refused a file: " + std::to_string(sent.value().result_int()) + " " +
                          sent.value().body());
            }
            files.push_back(binding.path().filename().string() + "/" + name);
          }
        }
      }
      commit["shards"].push_back(
          {{"shard", s}, {"files", std::move(files)}, {"rows", runtime_.shard_indexes(s)}});
    }
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (!copied.empty()) {
    auto committed =
        peer->send(http::verb::post, std::string(handoff_path_prefix) + "commit", commit.dump(), options_.token, deadline);
    if (!committed.ok()) return fail(committed.error().message);
    if (committed.value().result_int() != 200) {
      return fail("it refused the commit: " + std::to_string(committed.value().result_int()) + " " +
                  committed.value().body());
    }
  }

  // 3. The owner key, by compare-and-set.
  std::vector<std::int64_t> epochs;
  for (unsigned s : shards) epochs.push_back(membership_.epoch(s).value_or(0));
  auto handed = membership_.hand_over(shards, to);
  bool done = handed.ok() && handed.value();
  if (!handed.ok() && handed.error().code == Code::timeout) {
    // Its outcome is unknown, and the transaction may still be on its way. First it is made
    // impossible (its moves deleted, if they are still the ones it required); if that finds
    // a move changed, it went through or never will, and the assignment, read linearizably
    // (the transaction changes all of them or none), says which. Until etcd answers, nothing
    // runs here: the shards stay closed, whatever the wait. (Read at once, the assignment
    // could say "not yet" of a transaction applied just after: the shards would then be
    // the target's, with the copy it was told to put back.)
    spdlog::warn(
        "cluster: the hand-over of {} shards to {} may or may not have happened; asking etcd",
        shards.size(), to);
    std::optional<bool> impossible;  // settle_hand_over()'s answer, once etcd gave one
    for (;;) {
      if (!impossible) {
        auto settled = membership_.settle_hand_over(shards);
        if (settled.ok()) impossible = settled.value();
      }
      if (impossible && *impossible) {
        done = false;
        break;
      }
      if (impossible) {
        auto assigned = membership_.assignment(shards.front());
        if (assigned.ok()) {
          done = assigned.value() == to;
          break;
        }
      }
      {
        std::lock_guard lock(mutex_);
        if (stopping_) {
          // The process stops and etcd does not answer: the files stay (if the shards went,
          // the assignment keeps this node from claiming them; if not, they are its data).
          spdlog::warn("cluster: stopping before etcd said whether {} shards went to {}; their files stay",
                       shards.size(), to);
          return false;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  if (!done) {
    return fail(handed.ok() ? "this node no longer owns them at their epoch, or the target changed"
                            : handed.error().message);
  }
  for (std::size_t i = 0; i < shards.size(); ++i) handed_epoch_[shards[i]].store(epochs[i]);

  // 4. Gone from here: sockets told to reconnect, rows and files removed.
  std::size_t sockets = 0;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    unsigned s = shards[i];
    sockets += runtime_.close_shard_sockets(s, 1012, "the actor moved to another node; reconnect");
    try {
      runtime_.forget_shard_indexes(s);
    } catch (const std::exception& e) {
      spdlog::warn("cluster: shard {} moved, but its index rows here stay: {}", s, e.what());
    }
    std::error_code ec;
    auto trash = data_dir_ / "_cairn" / "trash" / (move + "-" + four_digits(s));
    fs::create_directories(trash.parent_path(), ec);
    fs::rename(runtime_.shard_dir(s), trash, ec);
    fs::remove_all(trash, ec);
  }
  // They stay closed here (owner_changed opens one that comes back at a new epoch).
  for (unsigned s : shards) backoff_[s] = {};
  double seconds = std::chrono::duration<double>(Steady::now() - started).count();
  moved_out_.fetch_add(shards.size());
  promoted_out_.fetch_add(promoted);
  groups_done_.fetch_add(1);
  bytes_out_.fetch_add(bytes);
  seconds_total_.store(seconds_total_.load() + seconds);
  last_seconds_.store(seconds);
  spdlog::info(
      "cluster: moved {} shards ({} promoted on their follower, {} bytes copied, {} sockets told to reconnect) to {} "
      "in {:.3f} s",
      shards.size(), promoted, bytes, sockets, to, seconds);
  return true;
}

void ShardMover::exclusive(const std::function<void()>& work) {
  std::lock_guard lock(receive_mutex_);
  work();
}

Response ShardMover::receive(const Request& request) {
  auto path = request.path();
  if (path == std::string(handoff_path_prefix) + "file") {
    if (request.method != "PUT")
      return Response::method_not_allowed("PUT", "a hand-off file is PUT");
    return receive_file(request);
  }
  if (path == std::string(handoff_path_prefix) + "commit") {
    if (request.method != "POST")
      return Response::method_not_allowed("POST", "a hand-off commit is POST");
    return receive_commit(request);
  }
  if (path == std::string(handoff_path_prefix) + "promote") {
    if (request.method != "POST")
      return Response::method_not_allowed("POST", "a hand-off promotion is POST");
    return receive_promote(request);
  }
  if (path == std::string(handoff_path_prefix) + "abort") {
    if (request.method != "POST")
      return Response::method_not_allowed("POST", "a hand-off abort is POST");
    return receive_abort(request);
  }
  return Response::error(Code::not_found, "no hand-off route " + std::string(path));
}

Response ShardMover::receive_file(const Request& request) {
  auto param = [&](std::string_view name) -> std::string {
    auto value = request.query_param(name);
    return value.ok() && value.value() ? *value.value() : std::string();
  };
  std::string move = param("move"), binding = param("binding"), file = param("file"),
              shard_text = param("shard");
  if (!valid_move_id(move) || !valid_binding(binding) || !valid_file(file) || shard_text.empty() ||
      shard_text.size() > 4 || shard_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(shard_text) >= ActorId::shard_count) {
    return Response::error(
        Code::invalid_argument,
        "a hand-off file needs move, shard (0-1023), binding and file (<64 hex>.sqlite)");
  }
  unsigned shard = static_cast<unsigned>(std::stoul(shard_text));
  if (!membership_.disk_ok()) {
    return Response::error(Code::unavailable,
                           "this node's data directory is not recorded in the cluster yet");
  }
  if (leaving_.load())
    return Response::error(Code::unavailable, "this node is leaving: it takes no shard");
  if (membership_.epoch(shard) || busy_[shard].load()) {
    return Response::error(Code::conflict, "this node owns shard " + shard_text +
                                               " or is moving it: it takes no copy");
  }
  std::lock_guard lock(receive_mutex_);
  try {
    write_durably(data_dir_ / "_cairn" / "incoming" / move / four_digits(shard) / binding / file,
                  request.body);
  } catch (const std::exception& e) {
    return Response::error(Code::unavailable, std::string("cannot store the file: ") + e.what());
  }
  bytes_in_.fetch_add(request.body.size());
  return Response::json(200, {{"stored", binding + "/" + file}});
}

Response ShardMover::receive_commit(const Request& request) {
  auto body = json::parse(request.body, nullptr, false);
  if (!body.is_object() || !body.contains("move") || !body["move"].is_string() ||
      !body.contains("shards") || !body["shards"].is_array() || body["shards"].size() > 64 ||
      !valid_move_id(body["move"].get<std::string>())) {
    return Response::error(Code::invalid_argument,
                           "a hand-off commit is {\"move\", \"from\", \"shards\": [...]}");
  }
  std::string move = body["move"].get<std::string>();
  if (!membership_.disk_ok()) {
    return Response::error(Code::unavailable,
                           "this node's data directory is not recorded in the cluster yet");
  }
  auto incoming = data_dir_ / "_cairn" / "incoming" / move;
  if (leaving_.load())
    return Response::error(Code::unavailable, "this node is leaving: it takes no shard");
  clear_stale_incoming();  // once per commit: what failed transfers left, an hour on
  std::lock_guard lock(receive_mutex_);
  std::error_code ec;
  // Everything checked before anything is installed.
  std::vector<std::pair<unsigned, const json*>> shards;
  for (const auto& entry : body["shards"]) {
    if (!entry.is_object() || !entry.contains("shard") || !entry["shard"].is_number_unsigned() ||
        entry["shard"].get<unsigned>() >= ActorId::shard_count || !entry.contains("files") ||
        !entry["files"].is_array() || !entry.contains("rows") || !entry["rows"].is_object() ||
        !entry["rows"].value("alarms", json()).is_array() ||
        !entry["rows"].value("names", json()).is_array()) {
      return Response::error(
          Code::invalid_argument,
          "each shard of a commit is {\"shard\", \"files\", \"rows\": {\"alarms\", \"names\"}}");
    }
    unsigned s = entry["shard"].get<unsigned>();
    if (membership_.epoch(s) || busy_[s].load()) {
      return Response::error(Code::conflict,
                             "this node owns shard " + std::to_string(s) + ": it takes no copy");
    }
    if (runtime_.shard_instances(s) > 0) {
      return Response::error(Code::conflict,
                             "shard " + std::to_string(s) + " still has instances open here");
    }
    for (const auto& file : entry["files"]) {
      if (!file.is_string() ||
          !fs::is_regular_file(incoming / four_digits(s) / file.get<std::string>(), ec)) {
        return Response::error(Code::conflict, "a file of shard " + std::to_string(s) +
                                                   " never arrived: " + file.dump());
      }
    }
    shards.emplace_back(s, &entry);
  }
  try {
    // Most shards of a hand-off are empty: only those with files or rows cost an fsync.
    bool renamed = false;
    json rows{{"alarms", json::array()}, {"names", json::array()}};
    std::vector<fs::path> trash;
    auto shards_dir = runtime_.shard_dir(0).parent_path();
    for (const auto& [s, entry] : shards) {
      auto target = runtime_.shard_dir(s);
      if (fs::exists(target)) {  // a stale copy from an earlier hand-off that did not go through
        trash.push_back(data_dir_ / "_cairn" / "trash" / (move + "-" + four_digits(s)));
        fs::create_directories(trash.back().parent_path());
        fs::rename(target, trash.back());
        renamed = true;
      }
      auto arrived = incoming / four_digits(s);
      if (fs::is_directory(arrived)) {
        for (const auto& binding : fs::directory_iterator(arrived))
          fsync_path(binding.path(), true);
        fsync_path(arrived, true);
        fs::create_directories(shards_dir);
        fs::rename(arrived, target);
        renamed = true;
      }
      for (const char* kind : {"alarms", "names"}) {
        const auto& some = (*entry)["rows"].value(kind, json::array());
        if (!some.is_array()) throw std::runtime_error("index rows are arrays");
        for (const auto& row : some) rows[kind].push_back(row);
      }
    }
    if (renamed) fsync_path(shards_dir, true);
    if (!rows["alarms"].empty() || !rows["names"].empty()) runtime_.adopt_shard_indexes(rows);
    for (const auto& t : trash) fs::remove_all(t, ec);
    moved_in_.fetch_add(shards.size());
  } catch (const std::exception& e) {
    return Response::error(Code::unavailable,
                           std::string("cannot install the shards: ") + e.what());
  }
  fs::remove_all(incoming, ec);
  return Response::json(200, {{"installed", shards.size()}});
}

Response ShardMover::receive_promote(const Request& request) {
  if (!options_.promote || !options_.demote) {
    return Response::error(Code::conflict, "this node does not replicate (--replicate): it has no copy to promote");
  }
  auto body = json::parse(request.body, nullptr, false);
  if (!body.is_object() || !body.contains("move") || !body["move"].is_string() ||
      !valid_move_id(body["move"].get<std::string>()) || !body.contains("shards") || !body["shards"].is_array() ||
      body["shards"].empty() || body["shards"].size() > 64) {
    return Response::error(Code::invalid_argument,
                           "a hand-off promotion is {\"move\", \"from\", \"shards\": [{\"shard\", \"epoch\", "
                           "\"seed\", \"index\"}, ...]}");
  }
  std::string move = body["move"].get<std::string>();
  if (!membership_.disk_ok()) {
    return Response::error(Code::unavailable, "this node's data directory is not recorded in the cluster yet");
  }
  if (leaving_.load()) return Response::error(Code::unavailable, "this node is leaving: it takes no shard");
  std::vector<std::pair<unsigned, ReplicaPosition>> asked;
  for (const auto& entry : body["shards"]) {
    auto number = [&](const char* key) {
      return entry.is_object() && entry.contains(key) && entry[key].is_number_unsigned();
    };
    if (!number("shard") || !number("epoch") || !number("seed") || !number("index") ||
        entry["shard"].get<unsigned>() >= ActorId::shard_count) {
      return Response::error(Code::invalid_argument,
                             "each shard of a promotion is {\"shard\": 0-1023, \"epoch\", \"seed\", \"index\"}");
    }
    unsigned s = entry["shard"].get<unsigned>();
    if (membership_.epoch(s) || busy_[s].load()) {
      return Response::error(Code::conflict, "this node owns shard " + std::to_string(s) + ": it takes no copy");
    }
    if (runtime_.shard_instances(s) > 0) {
      return Response::error(Code::conflict, "shard " + std::to_string(s) + " still has instances open here");
    }
    asked.emplace_back(s, ReplicaPosition{entry["epoch"].get<std::int64_t>(), entry["seed"].get<std::uint64_t>(),
                                          entry["index"].get<std::uint64_t>()});
  }
  std::lock_guard lock(receive_mutex_);
  if (std::find(aborted_.begin(), aborted_.end(), move) != aborted_.end()) {
    return Response::error(Code::conflict, "hand-off " + move + " was aborted");
  }
  auto made = options_.promote(asked, move);
  if (!made.ok()) return Response::error(made.error().code, "cannot promote the copies: " + made.error().message);
  auto entry = std::find_if(promoted_by_move_.begin(), promoted_by_move_.end(),
                            [&](const auto& e) { return e.first == move; });
  if (entry == promoted_by_move_.end()) entry = promoted_by_move_.insert(promoted_by_move_.end(), {move, {}});
  for (const auto& [s, at] : asked) {
    if (std::find(entry->second.begin(), entry->second.end(), s) == entry->second.end()) entry->second.push_back(s);
  }
  // Bounded: an old entry is one whose hand-off finished (the shard is claimed here) or
  // failed (aborted, or put back by the owner's next batch).
  while (promoted_by_move_.size() > 256) promoted_by_move_.pop_front();
  moved_in_.fetch_add(asked.size());
  promoted_in_.fetch_add(asked.size());
  return Response::json(200, {{"promoted", asked.size()}});
}

Response ShardMover::receive_abort(const Request& request) {
  auto move = request.query_param("move");
  if (!move || !*move || !valid_move_id(**move))
    return Response::error(Code::invalid_argument, "abort needs ?move=ID");
  std::lock_guard lock(receive_mutex_);
  aborted_.push_back(**move);
  while (aborted_.size() > 256) aborted_.pop_front();
  std::error_code ec;
  auto removed = fs::remove_all(data_dir_ / "_cairn" / "incoming" / **move, ec);
  std::size_t demoted = 0;
  if (auto it = std::find_if(promoted_by_move_.begin(), promoted_by_move_.end(),
                             [&](const auto& e) { return e.first == **move; });
      it != promoted_by_move_.end()) {
    for (unsigned s : it->second) {
      if (membership_.epoch(s)) continue;  // claimed here after all: the hand-off went through
      options_.demote(s, **move);
      ++demoted;
    }
    promoted_by_move_.erase(it);
  }
  return Response::json(200, {{"removed", ec ? 0 : removed}, {"demoted", demoted}});
}

void ShardMover::clear_stale_incoming() {
  std::lock_guard lock(receive_mutex_);
  std::error_code ec;
  auto now = fs::file_time_type::clock::now();
  for (const auto& entry : fs::directory_iterator(data_dir_ / "_cairn" / "incoming", ec)) {
    auto written = entry.last_write_time(ec);
    if (!ec && now - written > std::chrono::hours(1)) fs::remove_all(entry.path(), ec);
  }
}

std::size_t ShardMover::leave(std::chrono::milliseconds limit) {
  leaving_.store(true);  // it takes no shard from now on
  auto until = Steady::now() + limit;
  auto started = Steady::now();
  auto asked_at = Steady::time_point{};
  // Assigned here, claimed or not (one just handed in, or all after a re-join, is claimed
  // and then moved on).
  auto remaining = [&] {
    return std::max(membership_.owned().size(), membership_.assigned_here());
  };
  std::size_t owned = remaining();
  while (owned > 0 && Steady::now() < until) {
    if (membership_.fenced()) {
      spdlog::warn("cluster: this node is fenced (etcd out of reach): its shards wait for it");
      break;
    }
    if (membership_.stats().wrong_disk) {
      spdlog::warn("cluster: this node's shards are not in this data directory: they wait for it");
      break;
    }
    if (membership_.other_nodes() == 0) {
      spdlog::warn("cluster: no other node to take this node's {} shards: they wait for it", owned);
      break;
    }
    if (Steady::now() - asked_at >= std::chrono::seconds(1)) {
      // Asked again each second: a move that failed was dropped, and is asked for anew.
      auto asked = membership_.leave();
      asked_at = Steady::now();
      if (!asked.ok())
        spdlog::warn("cluster: cannot ask for this node's shards to move: {}",
                     asked.error().message);
    }
    wake_.notify_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    owned = remaining();
  }
  stop();  // the runtime stops next: no move may start on it
  spdlog::info("cluster: {} shards handed over in {:.3f} s; {} still here", moved_out_.load(),
               std::chrono::duration<double>(Steady::now() - started).count(), owned);
  return owned;
}

void ShardMover::write_metrics(metrics::TextWriter& out) const {
  out.family(
      "cairn_cluster_handoffs_total", "counter",
      "Hand-offs of a group of shards from this node, by outcome (failed: they stayed here)");
  out.sample("cairn_cluster_handoffs_total", {{"outcome", "done"}},
             static_cast<double>(groups_done_.load()));
  out.sample("cairn_cluster_handoffs_total", {{"outcome", "failed"}},
             static_cast<double>(groups_failed_.load()));
  out.family("cairn_cluster_handoff_seconds_total", "counter",
             "Time spent in hand-offs that went through");
  out.sample("cairn_cluster_handoff_seconds_total", {}, seconds_total_.load());
  out.family("cairn_cluster_handoff_last_seconds", "gauge",
             "How long the last hand-off that went through took");
  out.sample("cairn_cluster_handoff_last_seconds", {}, last_seconds_.load());
  out.family("cairn_cluster_shards_moved_total", "counter", "Shards handed over, by direction");
  out.sample("cairn_cluster_shards_moved_total", {{"direction", "out"}},
             static_cast<double>(moved_out_.load()));
  out.sample("cairn_cluster_shards_moved_total", {{"direction", "in"}},
             static_cast<double>(moved_in_.load()));
  out.family("cairn_cluster_shards_promoted_total", "counter",
             "Shards handed over by promoting the follower's copy (nothing copied), by direction");
  out.sample("cairn_cluster_shards_promoted_total", {{"direction", "out"}},
             static_cast<double>(promoted_out_.load()));
  out.sample("cairn_cluster_shards_promoted_total", {{"direction", "in"}},
             static_cast<double>(promoted_in_.load()));
  out.family("cairn_cluster_handoff_bytes_total", "counter",
             "Database bytes sent and received by hand-offs");
  out.sample("cairn_cluster_handoff_bytes_total", {{"direction", "out"}},
             static_cast<double>(bytes_out_.load()));
  out.sample("cairn_cluster_handoff_bytes_total", {{"direction", "in"}},
             static_cast<double>(bytes_in_.load()));
  out.family("cairn_cluster_moves", "gauge",
             "Moves of shards asked and not yet done, cluster-wide as seen here");
  out.sample("cairn_cluster_moves", {}, static_cast<double>(membership_.moves().size()));
}

}  // namespace cairn::gateway
