#include "saelab/interfaces/activation_source.hpp"

#include "saelab/core/error.hpp"

namespace saelab {

std::vector<std::int32_t> ActivationSource::generate(const std::vector<std::int32_t>&,
                                                     const GenerateOptions&) {
  throw Error(cat("source '", info().model_id,
                  "' cannot generate text; use a language-model source (llama, gpt2) for generation"));
}

}  // namespace saelab
