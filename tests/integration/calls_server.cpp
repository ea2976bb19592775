// cairn-calls-server (tests only): actors that call each other, to test Context::call across
// the nodes of a cluster. COUNTER is the counter example; TALLY asks a counter to add and keeps
// every answer it gets: POST /objects/TALLY/<name>/ask?counter=<c>&by=<n>, GET .../answers.
// POST .../slow?ms=<n> writes a row and then takes n ms (at most 5,000) before it answers: an
// event still running when the test stops the process.
// Its own flags (a string with choices, a free string, a boolean, a whole number) are what
// GET /objects/TALLY/<name>/flags answers: run_app's application flags of every kind.
#include <cairn/gateway/app.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "../../examples/counter/counter.hpp"

namespace {

struct Flags {
  std::string greeting = "hello";
  std::string motto = "count on it";
  bool loud = false;
  std::int64_t repeat = 1;
};
Flags flags;

class Tally final : public cairn::Actor {
 public:
  explicit Tally(cairn::Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS answers (answer TEXT NOT NULL)");
  }
  cairn::Methods methods() override {
    return {{"got", [this](const cairn::json& answer) -> cairn::Result<cairn::json> {
               ctx_.sql().exec("INSERT INTO answers VALUES (?)", answer.dump());
               return cairn::json(true);
             }}};
  }
  cairn::Response fetch(const cairn::Request& request) override {
    if (request.path() == "/flags") {
      return cairn::Response::json(
          200, {{"greeting", flags.greeting}, {"motto", flags.motto}, {"loud", flags.loud}, {"repeat", flags.repeat}});
    }
    if (request.path() == "/answers") {
      auto out = cairn::json::array();
      for (const auto& row : ctx_.sql().exec("SELECT answer FROM answers ORDER BY rowid")) {
        out.push_back(cairn::json::parse(std::get<std::string>(row["answer"])));
      }
      return cairn::Response::json(200, out);
    }
    if (request.path() == "/slow" && request.method == "POST") {
      auto ms = request.query_param("ms");
      if (!ms || !*ms || (*ms)->empty() || (*ms)->size() > 4 || (*ms)->find_first_not_of("0123456789") != std::string::npos) {
        return cairn::Response::error(cairn::Code::invalid_argument, "?ms=N, N at most 5000");
      }
      ctx_.sql().exec("INSERT INTO answers VALUES (?)", cairn::json("slow").dump());
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5000, std::stoi(**ms))));
      return cairn::Response::json(200, {{"slow", true}});
    }
    if (request.path() != "/ask" || request.method != "POST") {
      return cairn::Response::error(cairn::Code::not_found, "POST /ask?counter=C&by=N or GET /answers");
    }
    auto counter_param = request.query_param("counter");
    auto by_param = request.query_param("by");
    if (!counter_param || !by_param) return cairn::Response::error(cairn::Code::invalid_argument, "malformed query");
    const auto& counter = *counter_param;
    const auto& by = *by_param;
    if (!counter || !by || by->empty() || by->size() > 6 || by->find_first_not_of("0123456789") != std::string::npos) {
      return cairn::Response::error(cairn::Code::invalid_argument, "?counter=C&by=N (N a number)");
    }
    cairn::json args{{"by", std::stoll(*by)}};
    if (*by == "0") args = cairn::json{{"by", "not a number"}};  // the counter refuses it
    auto called = ctx_.call("COUNTER", *counter, "increment", std::move(args), "got", {{"counter", *counter}});
    if (!called) return cairn::Response::error(called.error());
    return cairn::Response::json(202, {{"asked", *counter}});
  }

 private:
  cairn::Context& ctx_;
};

// WHOAMI answers what the gateway told it of the request: GET /objects/WHOAMI/<name>/ gives
// the client's address, request id, traceparent, verified claims and the headers the hook
// set; /throw throws an exception whose text must reach no client; an upgrade is accepted.
// POST .../relay?to=<other> calls WHOAMI <other>'s "note" (which sets an alarm), and GET
// .../traces lists the trace each of those events saw (Context::trace()): a request followed
// through a call, its answer and an alarm. Each of them logs a warning line.
class Whoami final : public cairn::Actor {
 public:
  explicit Whoami(cairn::Context& ctx) : ctx_(ctx) {
    ctx_.sql().exec("CREATE TABLE IF NOT EXISTS traces (kind TEXT, request_id TEXT, traceparent TEXT)");
  }
  cairn::Methods methods() override {
    return {{"note", [this](const cairn::json&) -> cairn::Result<cairn::json> {
               spdlog::warn("whoami: note received");
               record("note");
               auto set = ctx_.set_alarm(ctx_.now() + std::chrono::milliseconds(50));
               if (!set) return set.error();
               return cairn::json(true);
             }},
            {"noted", [this](const cairn::json&) -> cairn::Result<cairn::json> {
               record("noted");
               return cairn::json(true);
             }}};
  }
  void on_alarm(const cairn::AlarmInfo&) override {
    spdlog::warn("whoami: alarm fired");
    record("alarm");
  }
  cairn::Response fetch(const cairn::Request& request) override {
    if (request.path() == "/throw") throw std::runtime_error("secret: the database password is hunter2");
    if (request.path() == "/relay") {
      auto to = request.query_param("to");
      if (!to || !*to) return cairn::Response::error(cairn::Code::invalid_argument, "?to=NAME");
      auto called = ctx_.call("WHOAMI", **to, "note", {}, "noted");
      if (!called) return cairn::Response::error(called.error());
      return cairn::Response::json(202, {{"relayed", **to}});
    }
    if (request.path() == "/traces") {
      auto out = cairn::json::array();
      for (const auto& row : ctx_.sql().exec("SELECT kind, request_id, traceparent FROM traces ORDER BY rowid")) {
        out.push_back({{"kind", std::get<std::string>(row["kind"])},
                       {"request_id", std::get<std::string>(row["request_id"])},
                       {"traceparent", std::get<std::string>(row["traceparent"])}});
      }
      return cairn::Response::json(200, out);
    }
    if (request.is_websocket_upgrade()) {
      auto accepted = ctx_.accept_websocket(request);
      return accepted ? std::move(*accepted) : cairn::Response::error(accepted.error());
    }
    auto header = [&request](const char* name) {
      auto value = request.header(name);
      return value ? cairn::json(std::string(*value)) : cairn::json();
    };
    return cairn::Response::json(200, {{"client_address", request.client_address},
                                       {"request_id", request.request_id},
                                       {"traceparent", request.traceparent},
                                       {"claims", request.claims},
                                       {"x_request_id", header("X-Request-Id")},
                                       {"x_hooked", header("X-Hooked")},
                                       {"x_cairn_client", header("X-Cairn-Client")}});
  }

 private:
  void record(const char* kind) {
    auto trace = ctx_.trace();
    ctx_.sql().exec("INSERT INTO traces VALUES (?, ?, ?)", std::string(kind), trace.request_id, trace.traceparent);
  }
  cairn::Context& ctx_;
};

}  // namespace

int main(int argc, char** argv) {
  cairn::gateway::AppDefaults app{.description = "cairn test server: actors that call each other",
                                  .port = 0,
                                  .data_dir = "calls-data",
                                  .flags = {{"--greeting", "how TALLY greets", &flags.greeting, 0, 0, {"hello", "hi"}},
                                            {"--motto", "TALLY's motto", &flags.motto},
                                            {"--loud", "whether TALLY shouts", &flags.loud},
                                            {"--repeat", "how often TALLY says it", &flags.repeat, 1, 10}}};
  return cairn::gateway::run_app(
      argc, argv, app,
      [] {
        cairn::Registry classes;
        classes.add<Counter>("COUNTER");
        classes.add<Tally>("TALLY");
        classes.add<Whoami>("WHOAMI");
        return classes;
      },
      [](cairn::gateway::GatewayOptions& web) {
        web.object_bindings = {"COUNTER", "TALLY", "WHOAMI"};
        // The application's own check: "X-Block: 1" is refused, WHOAMI's requests get a header.
        web.edge.on_request = [](cairn::Request& request, std::string_view binding) -> std::optional<cairn::Response> {
          if (request.header("X-Block") == "1") {
            return cairn::Response::error(cairn::Code::forbidden, "blocked by the application's hook");
          }
          if (binding == "WHOAMI") request.headers.emplace_back("X-Hooked", std::string(binding));
          return std::nullopt;
        };
      });
}
