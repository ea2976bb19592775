// The main() of every doctest executable: doctest's own, plus a guard. ctest runs each test
// case by name (doctest_discover_tests); a name that ctest mangles (a ';' splits it) would
// select nothing and "pass" with zero tests run. A filtered run that matches no test case
// fails instead.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

namespace {

bool ran = false;
unsigned matched = 0;

struct FilterGuard : doctest::IReporter {
  explicit FilterGuard(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    ran = true;
    matched = stats.numTestCasesPassingFilters;
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("filter-guard", 1, FilterGuard);

}  // namespace

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  int rc = context.run();
  if (context.shouldExit()) return rc;  // --help, --list-test-cases
  if (rc == 0 && ran && matched == 0) {
    std::fprintf(stderr, "no test case matched the filters (is there a ';' in a test name?)\n");
    return 1;
  }
  return rc;
}
