// Run state: fresh start (input scale), checkpoint snapshot, and exact resume.
#include <cmath>
#include <mutex>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/core/version.hpp"
#include "train/trainer_impl.hpp"

namespace saelab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string to_hex(const torch::Tensor& bytes) {
  static const char* digits = "0123456789abcdef";
  torch::Tensor b = bytes.contiguous();
  const auto* p = b.data_ptr<std::uint8_t>();
  std::string out;
  out.reserve(std::size_t(b.numel()) * 2);
  for (std::int64_t i = 0; i < b.numel(); ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

torch::Tensor from_hex(const std::string& hex, const std::string& where) {
  SAELAB_CHECK(hex.size() % 2 == 0, FormatError, where, ": odd-length hex string");
  torch::Tensor out = torch::empty({std::int64_t(hex.size() / 2)}, torch::kUInt8);
  auto* p = out.data_ptr<std::uint8_t>();
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw FormatError(cat(where, ": '", c, "' is not a hex digit"));
  };
  for (std::size_t i = 0; i < hex.size() / 2; ++i) {
    p[i] = std::uint8_t(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return out;
}

std::string generator_state(at::Generator& g) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return to_hex(g.get_state());
}

void set_generator_state(at::Generator& g, const std::string& hex, const std::string& where) {
  std::lock_guard<std::mutex> lock(g.mutex());
  try {
    g.set_state(from_hex(hex, where));
  } catch (const c10::Error& e) {
    throw FormatError(cat(where, ": invalid generator state: ", e.what_without_backtrace()));
  }
}

// Typed access to trainer.json, which is untrusted.
template <class T>
T field(const json& meta, const char* key, const std::string& where) {
  SAELAB_CHECK(meta.contains(key), FormatError, where, ": \"", key, "\" is missing");
  try {
    return meta.at(key).get<T>();
  } catch (const json::exception&) {
    throw FormatError(cat(where, ": \"", key, "\" has the wrong type: ", meta.at(key).dump()));
  }
}

void flatten(const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j.dump();
  }
}

// "train.lr: 0.0003 -> 0.0004; sae.d_sae: 4096 -> 8192"
std::string describe_changes(const json& before, const json& now) {
  std::map<std::string, std::string> a, b;
  flatten(before, "", a);
  flatten(now, "", b);
  std::string out;
  auto add = [&](const std::string& key, const std::string& x, const std::string& y) {
    out += cat(out.empty() ? "" : "; ", key, ": ", x, " -> ", y);
  };
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end())
      add(k, v, "(absent)");
    else if (it->second != v)
      add(k, v, it->second);
  }
  for (const auto& [k, v] : b) {
    if (!a.count(k)) add(k, "(absent)", v);
  }
  return out.empty() ? "the hashes differ but no option did" : out;
}

}  // namespace

namespace {
// sqrt(d) / mean row norm, from the store's statistics or else from the sample.
double norm_scale(const std::optional<NormStats>& stats, const torch::Tensor& sample, std::int64_t batches,
                  const char* what) {
  double mean_norm = 0.0;
  std::string origin;
  if (stats && stats->rows > 0) {
    mean_norm = stats->mean_norm;
    origin = cat("the store's statistics over ", stats->rows, " rows");
  } else {
    mean_norm = sample.to(torch::kFloat64).norm(2, {1}).mean().item<double>();
    origin = cat(sample.size(0), " rows of the first ", batches, " batches");
  }
  SAELAB_CHECK(std::isfinite(mean_norm) && mean_norm > 0, Error, "cannot normalize the ", what,
               ": their mean norm is ", mean_norm, " (from ", origin,
               "); the activations are all zero or not finite. Check the store, or set "
               "train.normalize_inputs: false");
  return std::sqrt(double(sample.size(1))) / mean_norm;
}

// The first `batches` batches of `reader` [rows, d], with its cursor put back.
torch::Tensor sample_batches(ActivationReader& reader, std::int64_t batches) {
  const json cursor = reader.cursor();
  std::vector<torch::Tensor> parts;
  for (std::int64_t i = 0; i < batches; ++i) parts.push_back(reader.next_batch().to(torch::kFloat32));
  reader.restore(cursor);
  return torch::cat(parts);
}
}  // namespace

void Trainer::Impl::init_fresh() {
  step = 0;
  tokens = 0;
  // The first batches serve as the sample for the input scale (without store statistics) and the
  // SAE's data-dependent initialisation; the cursor is put back so training sees them too.
  const torch::Tensor sample = sample_batches(*in.reader, cfg.init_sample_batches);  // [rows, d_in]
  input_scale =
      cfg.normalize_inputs ? norm_scale(in.norm_stats, sample, cfg.init_sample_batches, "inputs") : 1.0;
  in.sae->initialize_from_sample(sample.to(device) * input_scale);
  output_scale = 1.0;
  if (in.target_reader) {
    const torch::Tensor targets =
        sample_batches(*in.target_reader, cfg.init_sample_batches);  // [rows, d_out]
    if (cfg.normalize_inputs)
      output_scale = norm_scale(in.target_norm_stats, targets, cfg.init_sample_batches, "targets");
    in.sae->initialize_from_target_sample(targets.to(device) * output_scale);
  }
}

fs::path Trainer::Impl::save_checkpoint() {
  if (!is_main()) {  // rank 0 writes it; the others hold the same state
    last_checkpoint_step = step;
    return {};
  }
  TrainCheckpoint ckpt;
  ckpt.step = step;
  for (const auto& p : in.sae->named_parameters(true)) ckpt.tensors["module." + p.key()] = p.value();
  for (const auto& b : in.sae->named_buffers(true)) ckpt.tensors["module." + b.key()] = b.value();
  for (auto& kv : adam->state()) ckpt.tensors.insert(kv);
  for (auto& kv : dead->state()) ckpt.tensors.insert(kv);
  for (auto& kv : density->state()) ckpt.tensors.insert(kv);
  at::Generator global = at::detail::getDefaultCPUGenerator();
  ckpt.meta = json{{"format", "saelab-train-checkpoint"},
                   {"version", 1},
                   {"tokens", tokens},
                   {"total_steps", total_steps()},
                   {"input_scale", input_scale},
                   {"output_scale", output_scale},
                   {"lr", schedule.at(std::min(step, total_steps() - 1))},
                   {"cursor", in.reader->cursor()},
                   {"target_cursor", in.target_reader ? in.target_reader->cursor() : json(nullptr)},
                   {"config_hash", config_hash()},
                   {"config", identity()},
                   {"rng", {{"trainer", generator_state(gen)}, {"global", generator_state(global)}}},
                   {"losses", loss_states()},
                   {"world_size", group ? group->size() : 1},
                   {"saelab_version", kVersion}};
  last_checkpoint = write_train_checkpoint(checkpoints_dir(), ckpt, cfg.keep_checkpoints);
  last_checkpoint_step = step;
  return last_checkpoint;
}

json Trainer::Impl::loss_states() const {
  json states = json::object();
  for (const auto& l : in.losses) {
    json s = l->state();
    if (!s.is_null()) states[l->name()] = std::move(s);
  }
  return states;
}

void Trainer::Impl::restore_loss_states(const json& states, const std::string& where) {
  SAELAB_CHECK(states.is_object(), FormatError, where, ": key 'losses' must be an object, got ",
               states.dump());
  for (const auto& l : in.losses) {
    const bool stateful = !l->state().is_null();
    if (!stateful) continue;
    SAELAB_CHECK(states.contains(l->name()), FormatError, where, ": loss '", l->name(),
                 "' keeps state across steps, but the checkpoint has none for it under 'losses'");
    l->load_state(states[l->name()], cat(where, " losses.", l->name()));
  }
}

namespace {
void load_module_tensors(SaeArchitecture& sae, const std::map<std::string, torch::Tensor>& tensors,
                         const std::string& where) {
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, torch::Tensor& dst) {
    auto it = tensors.find("module." + name);
    SAELAB_CHECK(it != tensors.end(), FormatError, where, ": tensor 'module.", name,
                 "' is missing (the checkpoint was written by a different SAE)");
    SAELAB_CHECK(it->second.sizes() == dst.sizes(), FormatError, where, ": tensor 'module.", name,
                 "' has shape ", it->second.sizes(), " but the SAE's is ", dst.sizes());
    dst.copy_(it->second);
  };
  for (auto& p : sae.named_parameters(true)) load(p.key(), p.value());
  for (auto& b : sae.named_buffers(true)) load(b.key(), b.value());
}
}  // namespace

bool Trainer::Impl::resume(bool force) {
  std::optional<FoundCheckpoint> found = load_newest_train_checkpoint(checkpoints_dir(), warn);
  if (!found) return false;
  // Newer directories that failed to load are moved aside, so that pruning after the next
  // checkpoint never keeps them in place of good ones.
  for (const fs::path& dir : list_train_checkpoints(checkpoints_dir())) {
    if (dir == found->dir || !is_main()) break;
    const fs::path aside = checkpoints_dir() / ("corrupt-" + dir.filename().string());
    fs::remove_all(aside);
    fs::rename(dir, aside);
    warn(cat("moved the unusable checkpoint ", dir.string(), " to ", aside.string()));
  }
  const json& meta = found->checkpoint.meta;
  const std::string where = (found->dir / "trainer.json").string();
  const std::string saved_hash = field<std::string>(meta, "config_hash", where);
  if (saved_hash != config_hash()) {
    const std::string changes = describe_changes(meta.value("config", json::object()), identity());
    SAELAB_CHECK(force, ConfigError, "refusing to resume from ", found->dir.string(),
                 ": the configuration changed since it was written (", changes,
                 "). Resume with the original configuration, or force the resume (--force)");
    warn(cat("resuming from ", found->dir.string(), " with a changed configuration (", changes,
             "), as forced"));
  }
  const auto& tensors = found->checkpoint.tensors;
  const std::string state_where = (found->dir / "state.safetensors").string();
  load_module_tensors(*in.sae, tensors, state_where);
  adam->load_state(tensors, state_where);
  dead->load_state(tensors, state_where);
  density->load_state(tensors, state_where);
  step = found->checkpoint.step;
  tokens = field<std::int64_t>(meta, "tokens", where);
  input_scale = field<double>(meta, "input_scale", where);
  SAELAB_CHECK(step >= 0 && tokens >= 0 && std::isfinite(input_scale) && input_scale > 0, FormatError, where,
               ": step ", step, ", tokens ", tokens, ", input_scale ", input_scale,
               " are not all valid (≥ 0, ≥ 0, > 0)");
  const json rng = field<json>(meta, "rng", where);
  at::Generator global = at::detail::getDefaultCPUGenerator();
  set_generator_state(gen, field<std::string>(rng, "trainer", where), where + " rng.trainer");
  set_generator_state(global, field<std::string>(rng, "global", where), where + " rng.global");
  in.reader->restore(field<json>(meta, "cursor", where));
  if (in.target_reader) {
    output_scale = field<double>(meta, "output_scale", where);
    SAELAB_CHECK(std::isfinite(output_scale) && output_scale > 0, FormatError, where, ": output_scale ",
                 output_scale, " must be finite and > 0");
    in.target_reader->restore(field<json>(meta, "target_cursor", where));
  }
  restore_loss_states(meta.value("losses", json::object()), where);
  const std::int64_t saved_world = meta.value("world_size", std::int64_t(1)),
                     world = group ? group->size() : 1;
  if (saved_world != world && is_main())
    log::info("resuming on ", world, world == 1 ? " process" : " ranks", " a run checkpointed on ",
              saved_world,
              ": the global batch (train.batch_size) is the same, so the run goes on as it would have, to "
              "float rounding (its gradients are now summed over ",
              world, " slices)");
  truncate_metrics_after(step);
  last_checkpoint = found->dir;
  last_checkpoint_step = step;
  return true;
}

}  // namespace saelab
