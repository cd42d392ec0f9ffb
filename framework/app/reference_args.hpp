#pragma once
// --reference FILE... and --reference-tokens N, shared by steer, monitor and serve: where the
// per-latent reference statistics (maxima, quantiles) come from.
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "saelab/stages/inspect.hpp"

namespace saelab::cli {

struct ReferenceArgs {
  std::vector<std::string> files;  // text files; empty: the run's stored rows
  std::int64_t tokens = 200000;    // reference rows read
};

// `use` says what the statistics are for ("thresholds").
inline void add_reference_options(po::options_description& desc, ReferenceArgs& r, const std::string& use) {
  const std::string help = "text files for " + use + "; default: the run's stored rows";
  desc.add_options()("reference", po::value(&r.files)->multitoken(), help.c_str())(
      "reference-tokens", po::value(&r.tokens), "reference rows read (default 200000)");
}

// inspection_reference over what the options name (rows == 0 when there is nothing to read).
inline LatentReference reference_of(Inspection& in, const ReferenceArgs& r,
                                    const std::vector<std::int64_t>& keep) {
  return inspection_reference(in, {r.files.begin(), r.files.end()}, r.tokens, keep);
}

}  // namespace saelab::cli
