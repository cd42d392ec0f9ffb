#include "weights.hpp"

#include <cctype>
#include <map>
#include <sstream>
#include <vector>

#include <ATen/ATen.h>

#include "saelab/core/error.hpp"
#include "saelab/formats/hub.hpp"
#include "saelab/formats/safetensors.hpp"
#include "saelab/core/sha256.hpp"

namespace saelab::gpt2 {
namespace fs = std::filesystem;
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

std::string sizes_note(const Config& c) {
  return cat("(config.json: n_layer=", c.n_layer, ", n_head=", c.n_head, ", n_embd=", c.n_embd,
             ", n_positions=", c.n_positions, ", vocab_size=", c.vocab_size, ", d_mlp=", c.d_mlp(), ")");
}

// Refuses directories that hold only pickled checkpoints, with what to do instead.
[[noreturn]] void no_safetensors(const fs::path& dir) {
  std::vector<std::string> pickles;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto ext = e.path().extension().string();
    if (ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".ckpt" || ext == ".pkl")
      pickles.push_back(e.path().filename().string());
  }
  if (fs::exists(dir / "model.safetensors.index.json"))
    throw FormatError(cat(dir.string(), ": holds a sharded checkpoint (model.safetensors.index.json)",
                          "; the gpt2 source reads one model.safetensors. Merge the shards into "
                          "one file, e.g. in Python: safetensors.torch.save_file(state_dict, "
                          "'model.safetensors')"));
  if (!pickles.empty())
    throw FormatError(cat(dir.string(), ": has ", pickles.front(),
                          " but no model.safetensors. saelab never loads pickled PyTorch "
                          "checkpoints (they can run arbitrary code). Fetch model.safetensors "
                          "instead (`saelab fetch-model <org/name>`, or download it from the "
                          "model's Hugging Face page) and place it next to config.json"));
  throw FormatError(cat(dir.string(),
                        ": no model.safetensors. A GPT-2 model directory holds "
                        "config.json and model.safetensors; run `saelab fetch-model gpt2` or "
                        "point the gpt2 source's `model` option at such a directory"));
}

// The names of the mask buffers transformers used to save; they carry no weights.
bool is_mask_buffer(const std::string& name, std::int64_t n_layer) {
  if (name.compare(0, 2, "h.") != 0) return false;
  std::size_t end = 2;
  std::int64_t layer = 0;
  while (end < name.size() && end < 8 && std::isdigit(static_cast<unsigned char>(name[end])))
    layer = layer * 10 + (name[end++] - '0');
  if (end == 2 || layer >= n_layer) return false;
  const std::string rest = name.substr(end);
  return rest == ".attn.bias" || rest == ".attn.masked_bias";
}

// File tensors by name without the "transformer." prefix.
std::map<std::string, torch::Tensor> strip_prefix(safetensors::File& file) {
  const std::string prefix = "transformer.";
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, t] : file.tensors) {
    const bool prefixed = name.compare(0, prefix.size(), prefix) == 0;
    const std::string key = prefixed ? name.substr(prefix.size()) : name;
    SAELAB_CHECK(!out.count(key), FormatError, file.path.string(), ": tensor '", key,
                 "' appears twice, with and without the 'transformer.' prefix");
    out[key] = t;
  }
  return out;
}

torch::Tensor to_float(const torch::Tensor& t, const std::string& name, const fs::path& file) {
  const auto st = t.scalar_type();
  SAELAB_CHECK(st == torch::kFloat32 || st == torch::kFloat16 || st == torch::kBFloat16, FormatError,
               file.string(), ": tensor '", name, "' has dtype ", safetensors::dtype_to_string(st),
               "; GPT-2 weights must be F32, F16 or BF16");
  auto f = t.to(torch::kFloat32);
  SAELAB_CHECK(at::isfinite(f).all().item<bool>(), FormatError, file.string(), ": tensor '", name,
               "' contains NaN or Inf values; the file is corrupt");
  return f;
}

void check_names(const std::map<std::string, torch::Tensor>& found, const Gpt2Impl& model, const Config& cfg,
                 const fs::path& file) {
  const auto params = model.named_parameters();
  std::vector<std::string> missing;
  for (const auto& p : params) {
    if (!found.count(p.key())) {
      missing.push_back(cat(p.key(), " ", shape_str(p.value().sizes())));
      continue;
    }
    const auto& t = found.at(p.key());
    SAELAB_CHECK(t.sizes() == p.value().sizes(), FormatError, file.string(), ": tensor '", p.key(),
                 "' has shape ", shape_str(t.sizes()), ", expected ", shape_str(p.value().sizes()), " ",
                 sizes_note(cfg));
  }
  if (!missing.empty()) {
    std::string list;
    for (std::size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 5) list += cat(", ... (", missing.size() - 5, " more)");
    throw FormatError(cat(file.string(), ": ", missing.size(), " tensor(s) required by ", sizes_note(cfg),
                          " are missing: ", list));
  }
  for (const auto& [name, t] : found) {
    if (params.find(name) || is_mask_buffer(name, cfg.n_layer)) continue;
    throw FormatError(cat(file.string(), ": unexpected tensor '", name, "' ", shape_str(t.sizes()),
                          ", which is not part of a GPT-2 with ", sizes_note(cfg),
                          ". Is config.json the one that belongs to these weights?"));
  }
}

}  // namespace

LoadedModel load_model_dir(const fs::path& dir, torch::Dtype dtype, const torch::Device& device) {
  SAELAB_CHECK(fs::is_directory(dir), FormatError, dir.string(),
               ": not a directory; expected a model directory with config.json and "
               "model.safetensors");
  const fs::path config_path = dir / "config.json", weights_path = dir / "model.safetensors";
  if (!fs::exists(weights_path)) no_safetensors(dir);
  SAELAB_CHECK(fs::exists(config_path), FormatError, dir.string(),
               ": no config.json next to model.safetensors; GPT-2 sizes come from it");

  LoadedModel out;
  out.dir = dir;
  out.config = read_config(config_path);
  const Config& cfg = out.config;
  out.config_sha256 = sha256_file(config_path);

  auto file = safetensors::load(weights_path);
  auto found = strip_prefix(file);
  file.tensors.clear();  // `found` holds the only references: converted tensors free the originals

  const bool has_head = found.count("lm_head.weight") != 0;
  SAELAB_CHECK(has_head || cfg.tie_word_embeddings, FormatError, weights_path.string(),
               ": config.json sets tie_word_embeddings = false but the file has no "
               "lm_head.weight [",
               cfg.vocab_size, ", ", cfg.n_embd, "]");
  // Check names and shapes against a model that has an lm_head when the file does, before any
  // conversion work, so errors come fast.
  {
    Gpt2 probe(cfg, has_head);
    check_names(found, *probe, cfg, weights_path);
  }
  for (auto& [name, t] : found)
    if (!is_mask_buffer(name, cfg.n_layer)) t = to_float(t, name, weights_path);

  // Files saved from GPT2LMHeadModel often carry lm_head.weight equal to wte.weight: share it.
  const bool untied = has_head && !at::equal(found.at("lm_head.weight"), found.at("wte.weight"));
  out.model = Gpt2(cfg, untied);
  for (auto& p : out.model->named_parameters()) p.value().set_data(found.at(p.key()).to(device, dtype));
  out.model->eval();
  out.weights_sha256 = hub::file_sha256_cached(weights_path);
  return out;
}

}  // namespace saelab::gpt2
