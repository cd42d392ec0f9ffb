#pragma once
// "What fires on this sentence?": an SAE's latents on a given text, as a terminal heatmap, a
// standalone HTML page, or per-token lists (Neuronpedia's "top features for this text").
//
// Terminal: each token's background is its activation on a 256-colour ramp (white -> red, scaled
// to the latent's peak on the text), the token's markers (token_display) dimmed. When stdout is
// not a terminal the same information is plain text: one line per token, `pos token act`.
// HTML: no script at all; the one <style> element is allowed by its hash in the page's CSP; each
// token is a span whose class is its colour bucket and whose title is its exact value.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/sae.hpp"

namespace saelab {

struct SAELAB_API TextLatents {
  std::vector<std::int32_t> tokens;  // [T], BOS included where prepended
  std::vector<std::string> bytes;    // [T] each token's decoded bytes
  std::vector<bool> evaluated;       // [T] false at BOS and left-out positions
  torch::Tensor latents;             // [T, d_sae] float32 CPU; rows not evaluated are 0
};

// Tokenizes `text`, runs it through the model (segments of at most max_context tokens, each
// starting with BOS when prepend_bos) and the SAE. The first `first_position` positions of each
// segment (BOS included; the harvest's RowFilter::first_position, such as attention sinks) are not
// evaluated, nor is BOS in any case. Throws UsageError for empty text.
SAELAB_API TextLatents latents_on_text(ActivationSource& source, SaeArchitecture& sae,
                                       const std::string& hook, std::string_view text, double input_scale,
                                       bool prepend_bos, std::int64_t first_position = 0);

struct SAELAB_API LatentPeak {
  std::int64_t id = 0;
  float peak = 0;
  std::int64_t position = 0;  // token index of the peak
};

// The n latents with the highest peak on the text (peak > 0), highest first; ties: lower id.
SAELAB_API std::vector<LatentPeak> top_latents(const TextLatents& t, std::int64_t n);
// Per evaluated token, its n most active latents (act > 0), highest first.
SAELAB_API std::vector<std::vector<LatentPeak>> top_latents_per_token(const TextLatents& t, std::int64_t n);

// 0..9: which of ten equal steps of (0, peak] `act` falls in (0 also for act <= 0).
SAELAB_API int colour_bucket(float act, float peak);

SAELAB_API std::string terminal_heatmap(const TextLatents& t, const std::vector<std::int64_t>& latents,
                                        bool ansi);
SAELAB_API std::string html_heatmap(const TextLatents& t, const std::vector<std::int64_t>& latents,
                                    const std::vector<LatentPeak>& peaks, const std::string& title);
SAELAB_API nlohmann::json text_features_json(const TextLatents& t, std::int64_t per_token);
SAELAB_API std::string text_features_table(const TextLatents& t, std::int64_t per_token);

}  // namespace saelab
