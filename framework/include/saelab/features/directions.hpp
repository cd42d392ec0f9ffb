#pragma once
// What a latent's decoder direction does, computed in blocks of latents so memory stays bounded
// for any dictionary size.
//
// Neighbours: the latents whose decoder rows W_dec[g] have the highest cosine similarity with
// W_dec[f] (f itself excluded; ties go to the lower index; a zero row has cosine 0 with all).
// Logit effects: W_dec[f] · W_U, the direct effect on the logits of adding the latent's direction
// (in raw activation units: W_dec / input_scale) to the residual stream at the hook, through the
// source's unembedding (ActivationSource::logit_effects). The final norm's data-dependent scale
// (1 / rms, or 1 / std for LayerNorm) is left out, as in direct logit attribution: it is one
// positive number per position, so it scales a row without reordering it. Llama sources fold the
// final RMSNorm's weight into W_U (W_U · diag(g)); GPT-2 sources use W_U = wte^T alone (ln_f's
// weight, bias and centring left out). The tables rank tokens by that vector.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"

namespace saelab {

struct SAELAB_API Neighbour {
  std::int64_t id = 0;
  float cos = 0;
};

// w_dec [d_sae, d_in] -> per latent, its `n` nearest neighbours by decoder cosine, best first.
SAELAB_API std::vector<std::vector<Neighbour>> decoder_neighbours(const torch::Tensor& w_dec, std::int64_t n,
                                                                  std::int64_t block = 1024);

struct SAELAB_API LogitEntry {
  std::int32_t token = 0;
  float value = 0;
};

struct SAELAB_API LogitTable {
  std::vector<LogitEntry> top;     // most positive first
  std::vector<LogitEntry> bottom;  // most negative first
};

struct SAELAB_API LogitTables {
  bool available = false;
  std::string reason;               // why not, when unavailable
  std::vector<LogitTable> latents;  // [d_sae] when available
};

// Top and bottom `n` tokens of every latent's logit effect.
SAELAB_API LogitTables logit_tables(ActivationSource& source, const std::string& hook,
                                    const torch::Tensor& w_dec, double input_scale, std::int64_t n,
                                    std::int64_t block = 512);

}  // namespace saelab
