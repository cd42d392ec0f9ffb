#pragma once
// What the HTML report shows, gathered before rendering; also written as latents.json.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "latent_collect.hpp"
#include "saelab/interfaces/activation_source.hpp"

namespace saelab::report {

// Token id -> its text, decoded once per id. Without a source, ids show as "#id".
class TokenText {
 public:
  explicit TokenText(const ActivationSource* source) : source_(source) {}
  const std::string& get(std::int32_t id);

 private:
  const ActivationSource* source_;
  std::unordered_map<std::int32_t, std::string> cache_;
};

struct LogitEntry {
  std::int32_t token = 0;
  float value = 0;
};

struct LogitEffects {
  bool available = false;
  std::string reason;                 // why not, when unavailable
  std::vector<LogitEntry> top, bottom;  // most positive first / most negative first
  std::vector<double> hist_edges, hist_counts;  // distribution over the whole vocabulary
};

struct LatentReport {
  LatentExamples examples;
  std::int64_t fire_count = 0;
  double sum_activation = 0;
  LogitEffects logits;
};

struct ReportData {
  std::string model_id, hook, architecture, scan_description, selection_description;
  std::int64_t d_in = 0, d_sae = 0;
  std::int64_t tokens_counted = 0;  // tokens in the statistics (BOS excluded)
  std::vector<std::int64_t> fire_counts;  // [d_sae]
  nlohmann::json eval;
  CollectOptions collect;
  std::vector<LatentReport> latents;
};

// The page (one self-contained file) and its data as JSON.
std::string render_page(const ReportData& data, const TokenTable& tokens, TokenText& text);
nlohmann::json report_json(const ReportData& data, TokenText& text);

// Sections of the page (page.cpp, latent_section.cpp).
std::string render_latent(const LatentReport& latent, const ReportData& data,
                          const TokenTable& tokens, TokenText& text);
extern const char* const kStyle;
extern const char* const kScript;

}  // namespace saelab::report
