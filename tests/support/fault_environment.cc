// Linked into every test binary of a build with FIBER_FAULT_INJECTION: when
// the binary runs under FIBER_FAULTS, its last step checks that each fault kind
// the plan turns on was injected at least once, and fails naming those that
// never fired (a silently inactive injector must not pass for a clean run).
//
// ctest runs one test per process, and most single tests cannot meet every
// kind: FIBER_FAULTS_CHECK=0 turns the check off. Run whole binaries under
// FIBER_FAULTS to check (tools/ci/faults.sh does).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "driver/testing/fault_poller.h"

namespace {

class FaultEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    const char* env = std::getenv("FIBER_FAULTS");
    const char* check = std::getenv("FIBER_FAULTS_CHECK");
    if (env == nullptr || *env == '\0' || (check != nullptr && std::strcmp(check, "0") == 0)) {
      return;
    }
    using fiber::detail::FaultKind;
    const fiber::detail::FaultPlan plan = fiber::detail::FaultPlan::parse(env);
    const fiber::detail::FaultCounts counts = fiber::detail::fault_counts();
    std::string report;
    std::string missing;
    for (size_t k = 0; k < fiber::detail::kFaultKinds; ++k) {
      const auto kind = static_cast<FaultKind>(k);
      report += std::string(" ") + fiber::detail::fault_kind_name(kind) + "=" +
                std::to_string(counts[kind]);
      if (plan[kind] <= 0 || counts[kind] > 0) continue;
      // Only io_uring has a submission queue to refuse.
      if (kind == FaultKind::kBusy && counts.uring_pollers == 0) continue;
      missing += std::string(" ") + fiber::detail::fault_kind_name(kind);
    }
    std::fprintf(stderr, "fiber: faults injected:%s\n", report.c_str());
    EXPECT_TRUE(missing.empty()) << "FIBER_FAULTS=" << env
                                 << ": these fault kinds never fired:" << missing;
  }
};

[[maybe_unused]] ::testing::Environment* const registered =
    ::testing::AddGlobalTestEnvironment(new FaultEnvironment);

}  // namespace
