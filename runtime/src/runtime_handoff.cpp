// RuntimeCore: what a cluster hand-off needs of the runtime (DESIGN, "Many machines"): to
// know when a shard's instances are all closed, the shard's rows of the node's alarm and
// names indexes (they travel with the shard's files), and its sockets closed with 1012.
#include <stdexcept>

#include "runtime_core.hpp"

namespace cairn::detail {

std::size_t RuntimeCore::shard_instances(unsigned shard) const {
  // Under the structure lock: deliver() asks Ownership::admits again under it before it
  // makes an entry, so once the shard is closed and this says 0, it stays 0.
  std::lock_guard lock(mutex_);
  std::size_t count = 0;
  for (const auto& stripe : stripes_) {
    std::lock_guard stripe_lock(stripe.mutex);
    for (const auto& [hex, entry] : stripe.entries) {
      if (entry.id.shard() == shard) ++count;
    }
  }
  return count;
}

nlohmann::json RuntimeCore::shard_indexes(unsigned shard) const {
  nlohmann::json alarms = nlohmann::json::array();
  for (const auto& [id, due] : alarms_->of_shard(shard)) {
    alarms.push_back({{"binding", id.binding()}, {"name", id.name()}, {"due", due}});
  }
  nlohmann::json names = nlohmann::json::array();
  for (const auto& name : names_->of_shard(shard)) {
    names.push_back(
        {{"binding", name.binding}, {"name", name.name}, {"created_ms", name.created_ms}});
  }
  return {{"alarms", std::move(alarms)}, {"names", std::move(names)}};
}

void RuntimeCore::adopt_shard_indexes(const nlohmann::json& rows) {
  auto id_of = [](const nlohmann::json& row) {
    if (!row.is_object() || !row.contains("binding") || !row["binding"].is_string() ||
        !row.contains("name") || !row["name"].is_string()) {
      throw std::runtime_error("an index row without a string binding and name");
    }
    auto id = ActorId::make(row["binding"].get<std::string>(), row["name"].get<std::string>());
    if (!id) throw std::runtime_error("an index row with a bad actor: " + id.error().message);
    return *id;
  };
  if (!rows.is_object() || !rows.contains("alarms") || !rows["alarms"].is_array() ||
      !rows.contains("names") || !rows["names"].is_array()) {
    throw std::runtime_error("index rows are {\"alarms\": [...], \"names\": [...]}");
  }
  // Everything checked before anything is written.
  std::vector<NamesIndex::Name> names;
  for (const auto& row : rows["names"]) {
    auto id = id_of(row);
    auto created = row.value("created_ms", nlohmann::json(0));
    names.push_back({id.binding(), id.name(), id.hex(),
                     created.is_number_integer() ? created.get<std::int64_t>() : 0});
  }
  std::vector<std::pair<ActorId, std::int64_t>> alarms;
  for (const auto& row : rows["alarms"]) {
    auto id = id_of(row);
    if (!row.contains("due") || !row["due"].is_number_integer())
      throw std::runtime_error("an alarm row without due");
    alarms.emplace_back(id, row["due"].get<std::int64_t>());
  }
  names_->adopt(names);
  bool sooner = false;
  for (const auto& [id, due] : alarms) sooner = alarms_->adopt(id, due) || sooner;
  if (sooner) {
    {
      std::lock_guard lock(alarm_mutex_);
      alarm_kick_ = true;
    }
    alarm_cv_.notify_one();
  }
}

void RuntimeCore::forget_shard_indexes(unsigned shard) {
  alarms_->forget_shard(shard);
  names_->forget_shard(shard);
}

std::size_t RuntimeCore::close_shard_sockets(unsigned shard, int code, const std::string& reason) {
  std::size_t closed = 0;
  for (const auto& [owner, count] : sockets.owners()) {
    if (owner.shard() != shard) continue;
    for (const auto& entry : sockets.list(owner.hex(), "")) {
      entry->sink->close(code, reason);
      ++closed;
    }
  }
  return closed;
}

}  // namespace cairn::detail
