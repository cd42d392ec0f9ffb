#pragma once
// The report's data as JSON (docs/report-format.md), and JSON as a data script.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/features/collector.hpp"
#include "saelab/features/directions.hpp"

namespace saelab::report {

// A display string: plain when it has no markers, else [text, marker, text, marker, ...].
nlohmann::json display_json(std::string_view bytes);

// `v` rounded to `sig` significant digits (JSON stays small; the page shows what is stored).
double round_sig(double v, int sig = 5);

nlohmann::json example_json(const FeatureExample& e);

struct FeatureExtras {
  const std::vector<Neighbour>* neighbours = nullptr;
  const LogitTable* logits = nullptr;  // null: unavailable, for `unavailable_reason`
  std::string unavailable_reason;
};
nlohmann::json feature_json(std::int64_t id, const FeatureStats& s, std::int64_t tokens,
                            const FeatureExtras& x);

// The index's table row: [id, count, density, max, mean_firing, top_tokens].
nlohmann::json latent_row(std::int64_t id, const FeatureStats& s, std::int64_t tokens);

// `<call><json>);` as a script (call: "SAELAB.summary("): '<', '>', '&', U+2028 and U+2029 are written as \u
// escapes, so the text can never close a script element or start markup, whatever the data holds.
std::string js_call(const std::string& call, const nlohmann::json& value);

}  // namespace saelab::report
