#include "random_init.hpp"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "model.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/formats/safetensors.hpp"

namespace saelab::gpt2 {
namespace fs = std::filesystem;
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// What makes two random models identical; stored in the file's metadata.
std::string identity(const RandomInit& init) {
  return cat("seed=", init.seed, ";ln_noise=", init.ln_noise, ";bias_std=", init.bias_std);
}

bool already_written(const fs::path& dir, const std::string& config_json, const RandomInit& init) {
  std::error_code ec;
  if (!fs::exists(dir / "config.json", ec) || !fs::exists(dir / "model.safetensors", ec)) return false;
  try {
    if (read_file(dir / "config.json", 1 << 20, "model config") != config_json) return false;
    const auto header = safetensors::load_header(dir / "model.safetensors");
    auto it = header.metadata.find("saelab_random_init");
    return it != header.metadata.end() && it->second == identity(init);
  } catch (const Error&) {
    return false;  // unreadable: rewrite it
  }
}

}  // namespace

void write_random_model(const fs::path& dir, const RandomInit& init) {
  const Config& cfg = init.config;
  cfg.validate("random GPT-2 sizes");
  const std::string config_json = config_to_json(cfg);
  if (already_written(dir, config_json, init)) return;

  auto gen = at::make_generator<at::CPUGeneratorImpl>(init.seed);
  const double std_resid = 0.02 / std::sqrt(2.0 * static_cast<double>(cfg.n_layer));
  Gpt2 shape_model(cfg, /*untied_head=*/false);
  safetensors::TensorMap tensors;
  // named_parameters() is ordered, so a seed always gives the same weights.
  for (const auto& p : shape_model->named_parameters()) {
    const std::string& name = p.key();
    const auto sizes = p.value().sizes();
    torch::Tensor t;
    if (name.find(".ln_") != std::string::npos || name.rfind("ln_f.", 0) == 0) {
      const double base = ends_with(name, ".weight") ? 1.0 : 0.0;
      t = init.ln_noise > 0 ? at::normal(base, init.ln_noise, sizes, gen) : at::full(sizes, base);
    } else if (ends_with(name, ".bias")) {
      t = init.bias_std > 0 ? at::normal(0.0, init.bias_std, sizes, gen) : at::zeros(sizes);
    } else {
      const bool resid = ends_with(name, "c_proj.weight");
      t = at::normal(0.0, resid ? std_resid : 0.02, sizes, gen);
    }
    tensors[name] = t;
  }
  fs::create_directories(dir);
  safetensors::save(dir / "model.safetensors", tensors,
                    {{"format", "pt"}, {"saelab_random_init", identity(init)}});
  write_file_atomic(dir / "config.json", config_json);
}

}  // namespace saelab::gpt2
