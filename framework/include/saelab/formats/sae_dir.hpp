#pragma once
// The SAELens saved-SAE directory: what `saelab` writes after training, and what SAELens's
// SAE.load_from_disk (pre-6.0 flat cfg, which 6.x converts on load) reads unchanged.
//
// <dir>/
//   cfg.json                  one JSON object (keys below)
//   sae_weights.safetensors   the architecture's tensors, all in cfg "dtype", no others:
//     standard, topk, batchtopk  W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]
//     jumprelu                   the same and threshold [d_sae]
//     gated                      W_enc [d_in, d_sae], b_gate, b_mag, r_mag [d_sae], W_dec, b_dec
//                                (no b_enc: gate = (x - b_dec) W_enc + b_gate > 0, magnitude =
//                                ReLU((x - b_dec)(W_enc ⊙ exp r_mag) + b_mag), z = gate · magnitude)
//     transcoder                 W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_out], b_dec [d_out]
//                                (encoder input is the raw x: no b_dec subtraction)
//     skip_transcoder            the same and W_skip [d_out, d_in] (output += x W_skipᵀ)
//   sparsity.safetensors      optional: sparsity [d_sae], log10 of each feature's firing frequency
//
// cfg.json keys (SAELens SAEConfig.to_dict), all required:
//   architecture             "standard" | "topk" | "batchtopk" | "jumprelu" | "gated" | "transcoder"
//                            | "skip_transcoder"
//   d_in, d_sae              integers > 0; transcoders also d_out (integer > 0) and
//                            apply_b_dec_to_input false
//   dtype                    "float32" | "float64" | "float16" | "bfloat16" (also "torch.float32", ...)
//   device                   string ("cpu")
//   model_name, hook_name    strings ("gpt2", "blocks.8.hook_resid_pre")
//   hook_layer               integer >= 0; equals N when hook_name is "blocks.N.<...>"
//   hook_head_index          null or integer >= 0
//   context_size             integer > 0
//   prepend_bos, apply_b_dec_to_input   booleans
//   normalize_activations    "none": saelab folds its input scaling into the weights before saving
//   dataset_path             string
//   finetuning_scaling_factor  false (saelab writes no scaling-factor tensor)
//   sae_lens_training_version  null or string
// Optional, type-checked when present: activation_fn_str (string), activation_fn_kwargs (object),
// dataset_trust_remote_code (bool), neuronpedia_id (null|string), model_from_pretrained_kwargs
// (object), k (integer), hook_name_out (string: a transcoder's target hook, as SAELens names it).
// topk and batchtopk need k (top-level and/or activation_fn_kwargs.k; equal
// when both are given, 1 <= k <= d_sae). Other keys are kept and ignored, as SAELens does.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "saelab/core/export.hpp"
#include "saelab/formats/safetensors.hpp"

namespace saelab {

// What the SAE was trained on; the cfg.json keys every consumer needs.
struct SAELAB_API SaeMeta {
  std::string model_name;       // "gpt2"
  std::string hook_name;        // "blocks.8.hook_resid_pre"
  std::string hook_name_out;    // transcoders: the target hook ("blocks.8.hook_mlp_out"); else empty
  std::int64_t hook_layer = 0;  // 8 (see parse_hook_layer)
  std::int64_t context_size = 0;
  bool prepend_bos = true;
  std::string dtype = "float32";  // SAELens dtype string of the weights
  std::string dataset_path;
  std::string device = "cpu";
  bool apply_b_dec_to_input = true;
};

struct SAELAB_API SaeDirectory {
  nlohmann::json cfg;                          // cfg.json
  safetensors::TensorMap weights;              // sae_weights.safetensors
  std::optional<torch::Tensor> log10_density;  // [d_sae], sparsity.safetensors "sparsity"
};

// Writes <dir> as a whole: files go into a sibling temp directory, are fsynced, and the directory
// is renamed into place, so <dir> is either absent, the old SAE or the complete new one. Refuses an
// existing <dir> unless overwrite. Validates first, with the same checks as load_sae_directory.
SAELAB_API void save_sae_directory(const std::filesystem::path& dir, const SaeDirectory& sae,
                                   bool overwrite = false);
// Reads and validates (cfg keys and types, tensor names, dtypes and shapes against d_in/d_sae).
// Throws FormatError naming the file and the key or tensor.
SAELAB_API SaeDirectory load_sae_directory(const std::filesystem::path& dir);

// Checks a directory's contents without touching disk; `where` prefixes errors (usually the dir).
SAELAB_API void validate_sae_directory(const SaeDirectory& sae, const std::string& where);

// Full SAELens cfg for a freshly trained SAE. `extras` (SaeArchitecture::extra_config(), e.g.
// {"k": 32}) are merged last; k is mirrored into activation_fn_kwargs as SAELens 5.x expects.
SAELAB_API nlohmann::json make_sae_cfg(const std::string& architecture, std::int64_t d_in, std::int64_t d_sae,
                                       const SaeMeta& meta,
                                       const nlohmann::json& extras = nlohmann::json::object());
SAELAB_API SaeMeta sae_meta_from_cfg(const nlohmann::json& cfg, const std::string& where);
// "blocks.8.hook_resid_pre" -> 8. Throws ConfigError for a name that does not start with blocks.N.
SAELAB_API std::int64_t parse_hook_layer(const std::string& hook_name);
// "blocks.8.hook_resid_pre" -> 8; nothing for a name without a block number ("synthetic.hook").
SAELAB_API std::optional<std::int64_t> hook_layer_from_name(const std::string& hook_name);
// The architectures cfg.json may name (see the table at the top of this header).
SAELAB_API const std::vector<std::string>& sae_architectures();
// transcoder, skip_transcoder: the decoder maps into another space of width d_out.
SAELAB_API bool is_transcoder_architecture(const std::string& architecture);
// cfg "d_out" for a transcoder, "d_in" otherwise (the cfg must have been validated).
SAELAB_API std::int64_t sae_d_out(const nlohmann::json& cfg);

// One tensor of sae_weights.safetensors: its name and its shape in terms of the cfg's widths.
enum class SaeDim { d_in, d_sae, d_out };
struct SAELAB_API SaeTensorSpec {
  std::string name;
  std::vector<SaeDim> shape;
};
// The tensors an architecture's sae_weights.safetensors holds (throws for an unknown one).
SAELAB_API std::vector<SaeTensorSpec> sae_weight_specs(const std::string& architecture);
// Their names, in the same order.
SAELAB_API std::vector<std::string> sae_weight_names(const std::string& architecture);
// "float32" / "torch.float32" -> kFloat32 etc.; throws FormatError listing the allowed strings.
SAELAB_API torch::Dtype sae_dtype_from_string(const std::string& s, const std::string& where);

}  // namespace saelab
