// A test plugin: PROBE answers every request with the options its factory was given and
// the path it saw. Its options also make its registration misbehave, for the refusal tests:
// {"throw": "std"}, {"throw": "int"}, {"throw": "abort"} (it crashes), {"also": "<BINDING>"} (a second class under that
// binding), {"route-to": "<BINDING>"} (a default route to that binding).
#include <cairn/plugin.hpp>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace {

class Probe final : public cairn::Actor {
 public:
  Probe(cairn::Context&, const nlohmann::json& options) : options_(options) {}
  cairn::Response fetch(const cairn::Request& request) override {
    return cairn::Response::json(200, {{"options", options_}, {"path", request.path()}});
  }

 private:
  nlohmann::json options_;
};

void register_classes(cairn::PluginRegistrar& classes) {
  auto options = classes.options("PROBE");
  auto thrown = options.value("throw", "");
  if (thrown == "std") throw std::runtime_error("the probe was told to refuse");
  if (thrown == "int") throw 7;
  if (thrown == "abort") std::abort();  // a crash while registering
  classes.add<Probe>("PROBE");
  if (options.contains("also")) classes.add<Probe>(options["also"].get<std::string>());
  classes.route({"/probe", options.value("route-to", "PROBE"), "name", "", "first"});
}

}  // namespace

CAIRN_PLUGIN(register_classes)
