// The usage text of the example programs and load tools: --help lists the
// program's own flags, not every flag of the libraries it links (Abseil's
// among them, which would bury the few that matter).
//
// Example:
//   ABSL_FLAG(int, cores, 0, "schedulers to run");
//   int main(int argc, char** argv) {
//     fiber::cli::set_usage("a server.\n\n  server --cores=2", __FILE__);
//     absl::ParseCommandLine(argc, argv);
#pragma once

#include <string>

#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace fiber::cli {

// set_usage() sets the text --help prints first and makes --help and
// --helpshort list the flags defined in `flags_file`: pass __FILE__ from the
// file that holds the program's ABSL_FLAGs. Abseil hands the filter a flag's
// file without its leading '/', hence the suffix test. Call it once, before
// absl::ParseCommandLine().
inline void set_usage(absl::string_view message, absl::string_view flags_file) {
  absl::SetProgramUsageMessage(message);
  auto own = [file = std::string(flags_file)](absl::string_view flag_file) {
    return !flag_file.empty() && absl::EndsWith(file, flag_file);
  };
  absl::FlagsUsageConfig config;
  config.contains_help_flags = own;
  config.contains_helpshort_flags = own;
  absl::SetFlagsUsageConfig(config);
}

}  // namespace fiber::cli
