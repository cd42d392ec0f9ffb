// SAELens saved-SAE directories (format in saelab/formats/sae_dir.hpp).
#include "saelab/formats/sae_dir.hpp"

#include <algorithm>
#include <limits>
#include <optional>

#include <unistd.h>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"

namespace saelab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kCfgFile = "cfg.json";
constexpr const char* kWeightsFile = "sae_weights.safetensors";
constexpr const char* kSparsityFile = "sparsity.safetensors";
constexpr std::uintmax_t kMaxCfgBytes = 16u << 20;

struct DtypeName {
  const char* name;
  torch::Dtype dtype;
};
const DtypeName kSaeDtypes[] = {
    {"float32", torch::kFloat32},       {"float64", torch::kFloat64},
    {"float16", torch::kFloat16},       {"bfloat16", torch::kBFloat16},
    {"torch.float32", torch::kFloat32}, {"torch.float64", torch::kFloat64},
    {"torch.float16", torch::kFloat16}, {"torch.bfloat16", torch::kBFloat16},
};

std::string describe(const json& v) {
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  const std::string type = v.type_name();
  return cat(type == "array" || type == "object" ? "an " : "a ", type, " (", text, ")");
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

// "blocks.<digits>.<rest>" -> the digits; anything else -> nullopt.
std::optional<std::string> block_number(const std::string& hook) {
  const std::string prefix = "blocks.";
  if (hook.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::size_t end = hook.find('.', prefix.size());
  if (end == std::string::npos || end == prefix.size() || end + 1 >= hook.size()) return std::nullopt;
  std::string digits = hook.substr(prefix.size(), end - prefix.size());
  for (char c : digits)
    if (c < '0' || c > '9') return std::nullopt;
  return digits;
}

// Typed access to cfg.json with errors that name the file, the key and the allowed values.
class CfgReader {
 public:
  CfgReader(const json& cfg, std::string where) : cfg_(cfg), where_(std::move(where)) {}

  const json& get(const char* key) const {
    SAELAB_CHECK(cfg_.contains(key), FormatError, where_, ": missing key '", key,
                 "'; a SAELens cfg.json needs it (see saelab/formats/sae_dir.hpp for the key set)");
    return cfg_[key];
  }
  std::string str(const char* key) const {
    const json& v = get(key);
    SAELAB_CHECK(v.is_string(), FormatError, where_, ": key '", key, "' is ", describe(v),
                 "; it must be a string");
    return v.get<std::string>();
  }
  std::string one_of(const char* key, const std::vector<std::string>& allowed) const {
    std::string s = str(key);
    SAELAB_CHECK(std::find(allowed.begin(), allowed.end(), s) != allowed.end(), FormatError, where_,
                 ": key '", key, "' is \"", s, "\"; allowed: ", join(allowed));
    return s;
  }
  std::int64_t integer(const char* key, std::int64_t min) const { return integer_value(key, get(key), min); }
  std::int64_t integer_value(const std::string& key, const json& v, std::int64_t min) const {
    bool ok =
        v.is_number_integer() &&
        (!v.is_number_unsigned() ||
         v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
    SAELAB_CHECK(ok && v.get<std::int64_t>() >= min, FormatError, where_, ": key '", key, "' is ",
                 describe(v), "; it must be an integer >= ", min);
    return v.get<std::int64_t>();
  }
  bool boolean(const char* key) const {
    const json& v = get(key);
    SAELAB_CHECK(v.is_boolean(), FormatError, where_, ": key '", key, "' is ", describe(v),
                 "; it must be true or false");
    return v.get<bool>();
  }
  void null_or(const char* key, bool (json::*is_type)() const noexcept, const char* type) const {
    const json& v = get(key);
    SAELAB_CHECK(v.is_null() || (v.*is_type)(), FormatError, where_, ": key '", key, "' is ", describe(v),
                 "; it must be null or ", type);
  }
  void optional(const char* key, bool (json::*is_type)() const noexcept, const char* type) const {
    if (!cfg_.contains(key)) return;
    const json& v = cfg_[key];
    SAELAB_CHECK((v.*is_type)(), FormatError, where_, ": key '", key, "' is ", describe(v), "; it must be ",
                 type);
  }
  const std::string& where() const { return where_; }

 private:
  const json& cfg_;
  std::string where_;
};

// k for topk/batchtopk: top-level (SAELens 6) and/or activation_fn_kwargs.k (SAELens 5).
void check_k(const json& cfg, const CfgReader& r, std::int64_t d_sae) {
  std::optional<std::int64_t> top, kw;
  if (cfg.contains("k")) top = r.integer_value("k", cfg["k"], 1);
  if (cfg.contains("activation_fn_kwargs") && cfg["activation_fn_kwargs"].contains("k"))
    kw = r.integer_value("activation_fn_kwargs.k", cfg["activation_fn_kwargs"]["k"], 1);
  SAELAB_CHECK(top || kw, FormatError, r.where(), ": architecture \"", cfg["architecture"].get<std::string>(),
               "\" needs k (top-level \"k\" or activation_fn_kwargs.k), an integer in [1, d_sae]");
  SAELAB_CHECK(!top || !kw || *top == *kw, FormatError, r.where(), ": key 'k' is ", *top,
               " but activation_fn_kwargs.k is ", *kw, "; they must agree");
  std::int64_t k = top ? *top : *kw;
  SAELAB_CHECK(k <= d_sae, FormatError, r.where(), ": k is ", k, " but d_sae is ", d_sae,
               "; k must be in [1, d_sae]");
}

void validate_cfg(const json& cfg, const std::string& where) {
  SAELAB_CHECK(cfg.is_object(), FormatError, where, ": cfg is ", describe(cfg), "; it must be a JSON object");
  CfgReader r(cfg, where);
  std::string arch = r.one_of("architecture", sae_architectures());
  r.integer("d_in", 1);
  if (is_transcoder_architecture(arch)) {
    r.integer("d_out", 1);
    SAELAB_CHECK(!r.boolean("apply_b_dec_to_input"), FormatError, where, ": architecture \"", arch,
                 "\" has apply_b_dec_to_input true; a transcoder's b_dec lives in the output space "
                 "(d_out), so it must be false (as SAELens requires)");
  }
  std::int64_t d_sae = r.integer("d_sae", 1);
  sae_dtype_from_string(r.str("dtype"), cat(where, ": key 'dtype'"));
  r.str("device");
  r.str("model_name");
  std::string hook = r.str("hook_name");
  std::int64_t layer = r.integer("hook_layer", 0);
  if (auto block = block_number(hook); block && block->size() <= 18)
    SAELAB_CHECK(std::stoll(*block) == layer, FormatError, where, ": key 'hook_layer' is ", layer,
                 " but hook_name \"", hook, "\" names layer ", *block, "; they must agree");
  r.null_or("hook_head_index", &json::is_number_integer, "an integer");
  r.integer("context_size", 1);
  r.boolean("prepend_bos");
  r.boolean("apply_b_dec_to_input");
  r.one_of("normalize_activations", {"none"});
  r.str("dataset_path");
  SAELAB_CHECK(!r.boolean("finetuning_scaling_factor"), FormatError, where,
               ": key 'finetuning_scaling_factor' is true; allowed: false (saelab neither writes "
               "nor reads a scaling-factor tensor)");
  r.null_or("sae_lens_training_version", &json::is_string, "a string");
  r.optional("activation_fn_str", &json::is_string, "a string");
  r.optional("activation_fn_kwargs", &json::is_object, "an object");
  r.optional("dataset_trust_remote_code", &json::is_boolean, "true or false");
  r.optional("model_from_pretrained_kwargs", &json::is_object, "an object");
  if (cfg.contains("neuronpedia_id")) r.null_or("neuronpedia_id", &json::is_string, "a string");
  r.optional("hook_name_out", &json::is_string, "a string");
  if (arch == "topk" || arch == "batchtopk") check_k(cfg, r, d_sae);
}

std::int64_t dim_size(SaeDim d, std::int64_t d_in, std::int64_t d_sae, std::int64_t d_out) {
  return d == SaeDim::d_in ? d_in : d == SaeDim::d_sae ? d_sae : d_out;
}

void validate_weights(const SaeDirectory& sae, const std::string& dir) {
  const std::string file = cat(dir, "/", kWeightsFile);
  const std::string arch = sae.cfg["architecture"].get<std::string>();
  const std::int64_t d_in = sae.cfg["d_in"].get<std::int64_t>();
  const std::int64_t d_sae = sae.cfg["d_sae"].get<std::int64_t>();
  const std::int64_t d_out = sae_d_out(sae.cfg);
  const std::string dtype_name = sae.cfg["dtype"].get<std::string>();
  const torch::Dtype dtype = sae_dtype_from_string(dtype_name, file);
  const std::vector<std::string> names = sae_weight_names(arch);
  for (const auto& [name, t] : sae.weights)
    SAELAB_CHECK(std::find(names.begin(), names.end(), name) != names.end(), FormatError, file, ", tensor '",
                 name, "': not part of a ", arch, " SAE; allowed tensors: ", join(names));
  const std::string dims =
      cat("d_in ", d_in, ", d_sae ", d_sae, is_transcoder_architecture(arch) ? cat(", d_out ", d_out) : "");
  for (const auto& spec : sae_weight_specs(arch)) {
    auto it = sae.weights.find(spec.name);
    SAELAB_CHECK(it != sae.weights.end() && it->second.defined(), FormatError, file, ", tensor '", spec.name,
                 "': missing; a ", arch, " SAE needs ", join(names));
    const torch::Tensor& t = it->second;
    std::vector<std::int64_t> want;
    for (SaeDim d : spec.shape) want.push_back(dim_size(d, d_in, d_sae, d_out));
    SAELAB_CHECK(t.sizes().vec() == want, FormatError, file, ", tensor '", spec.name, "': shape ", t.sizes(),
                 " but cfg.json (", dims, ") requires ", c10::IntArrayRef(want));
    SAELAB_CHECK(t.scalar_type() == dtype, FormatError, file, ", tensor '", spec.name, "': dtype ",
                 c10::toString(t.scalar_type()), " but cfg.json says \"", dtype_name,
                 "\"; weights must be stored in the cfg dtype");
  }
  if (sae.log10_density) {
    const torch::Tensor& s = *sae.log10_density;
    const std::string sfile = cat(dir, "/", kSparsityFile);
    SAELAB_CHECK(s.defined() && s.dim() == 1 && s.size(0) == d_sae, FormatError, sfile,
                 ", tensor 'sparsity': shape ", s.defined() ? cat(s.sizes()) : std::string("undefined"),
                 "; it must be [d_sae] = [", d_sae, "]");
    SAELAB_CHECK(s.is_floating_point(), FormatError, sfile, ", tensor 'sparsity': dtype ",
                 c10::toString(s.scalar_type()), "; it must be a floating-point type (F32)");
  }
}

json read_cfg(const fs::path& file) {
  std::string text = read_file(file, kMaxCfgBytes, "SAE cfg.json");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(
        cat(file.string(), ": not valid JSON (", e.what(), "); cfg.json must be one JSON object"));
  }
}

fs::path strip_trailing_slash(const fs::path& p) {
  return p.has_filename() || !p.has_parent_path() ? p : p.parent_path();
}
}  // namespace

torch::Dtype sae_dtype_from_string(const std::string& s, const std::string& where) {
  std::vector<std::string> allowed;
  for (const auto& d : kSaeDtypes) {
    if (s == d.name) return d.dtype;
    allowed.emplace_back(d.name);
  }
  throw FormatError(cat(where, ": dtype \"", s, "\" is not supported; allowed: ", join(allowed)));
}

const std::vector<std::string>& sae_architectures() {
  static const std::vector<std::string> names = {"standard", "topk",       "batchtopk",      "jumprelu",
                                                 "gated",    "transcoder", "skip_transcoder"};
  return names;
}

bool is_transcoder_architecture(const std::string& architecture) {
  return architecture == "transcoder" || architecture == "skip_transcoder";
}

std::int64_t sae_d_out(const json& cfg) {
  if (!is_transcoder_architecture(cfg.value("architecture", ""))) return cfg.at("d_in").get<std::int64_t>();
  return cfg.at("d_out").get<std::int64_t>();
}

std::vector<SaeTensorSpec> sae_weight_specs(const std::string& architecture) {
  using D = SaeDim;
  const auto& known = sae_architectures();
  SAELAB_CHECK(std::find(known.begin(), known.end(), architecture) != known.end(), FormatError,
               "SAE architecture \"", architecture, "\" is not supported; allowed: ", join(known));
  const SaeTensorSpec W_enc{"W_enc", {D::d_in, D::d_sae}}, W_dec{"W_dec", {D::d_sae, D::d_out}},
      b_dec{"b_dec", {D::d_out}};
  if (architecture == "gated")
    return {W_enc, {"b_gate", {D::d_sae}}, {"b_mag", {D::d_sae}}, {"r_mag", {D::d_sae}}, W_dec, b_dec};
  std::vector<SaeTensorSpec> specs = {W_enc, {"b_enc", {D::d_sae}}, W_dec, b_dec};
  if (architecture == "jumprelu") specs.push_back({"threshold", {D::d_sae}});
  if (architecture == "skip_transcoder") specs.push_back({"W_skip", {D::d_out, D::d_in}});
  return specs;
}

std::vector<std::string> sae_weight_names(const std::string& architecture) {
  std::vector<std::string> names;
  for (const auto& spec : sae_weight_specs(architecture)) names.push_back(spec.name);
  return names;
}

std::optional<std::int64_t> hook_layer_from_name(const std::string& hook_name) {
  auto block = block_number(hook_name);
  if (!block || block->size() > 9) return std::nullopt;
  return std::stoll(*block);
}

std::int64_t parse_hook_layer(const std::string& hook_name) {
  auto layer = hook_layer_from_name(hook_name);
  SAELAB_CHECK(layer, ConfigError, "hook name \"", hook_name,
               "\" does not name a layer; expected blocks.<layer>.<hook>, e.g. "
               "\"blocks.8.hook_resid_pre\"");
  return *layer;
}

void validate_sae_directory(const SaeDirectory& sae, const std::string& where) {
  validate_cfg(sae.cfg, cat(where, "/", kCfgFile));
  validate_weights(sae, where);
}

json make_sae_cfg(const std::string& architecture, std::int64_t d_in, std::int64_t d_sae, const SaeMeta& meta,
                  const json& extras) {
  json cfg = {
      {"architecture", architecture},
      {"d_in", d_in},
      {"d_sae", d_sae},
      {"dtype", meta.dtype},
      {"device", meta.device},
      {"model_name", meta.model_name},
      {"hook_name", meta.hook_name},
      {"hook_layer", meta.hook_layer},
      {"hook_head_index", nullptr},
      {"activation_fn_str", architecture == "topk" || architecture == "batchtopk" ? "topk" : "relu"},
      {"activation_fn_kwargs", json::object()},
      {"apply_b_dec_to_input", meta.apply_b_dec_to_input},
      {"finetuning_scaling_factor", false},
      {"sae_lens_training_version", nullptr},
      {"prepend_bos", meta.prepend_bos},
      {"dataset_path", meta.dataset_path},
      {"dataset_trust_remote_code", false},
      {"context_size", meta.context_size},
      {"normalize_activations", "none"},
      {"neuronpedia_id", nullptr},
      {"model_from_pretrained_kwargs", json::object()},
  };
  SAELAB_CHECK(extras.is_object(), Error, "make_sae_cfg: extras must be a JSON object, got ",
               describe(extras));
  if (!meta.hook_name_out.empty()) cfg["hook_name_out"] = meta.hook_name_out;
  for (const auto& [k, v] : extras.items()) cfg[k] = v;
  if (extras.contains("k")) cfg["activation_fn_kwargs"]["k"] = extras["k"];
  return cfg;
}

SaeMeta sae_meta_from_cfg(const json& cfg, const std::string& where) {
  validate_cfg(cfg, where);
  SaeMeta m;
  m.model_name = cfg["model_name"].get<std::string>();
  m.hook_name = cfg["hook_name"].get<std::string>();
  m.hook_layer = cfg["hook_layer"].get<std::int64_t>();
  m.context_size = cfg["context_size"].get<std::int64_t>();
  m.prepend_bos = cfg["prepend_bos"].get<bool>();
  m.dtype = cfg["dtype"].get<std::string>();
  m.dataset_path = cfg["dataset_path"].get<std::string>();
  m.device = cfg["device"].get<std::string>();
  m.apply_b_dec_to_input = cfg["apply_b_dec_to_input"].get<bool>();
  m.hook_name_out = cfg.value("hook_name_out", std::string());
  return m;
}

SaeDirectory load_sae_directory(const fs::path& dir_in) {
  const fs::path dir = strip_trailing_slash(dir_in);
  SAELAB_CHECK(fs::is_directory(dir), FormatError, "SAE directory '", dir.string(),
               "' does not exist or is not a directory; it must hold ", kCfgFile, " and ", kWeightsFile);
  for (const char* f : {kCfgFile, kWeightsFile})
    SAELAB_CHECK(fs::is_regular_file(dir / f), FormatError, "SAE directory '", dir.string(), "': missing ", f,
                 "; a SAELens SAE directory holds ", kCfgFile, ", ", kWeightsFile, " and optionally ",
                 kSparsityFile);
  SaeDirectory sae;
  sae.cfg = read_cfg(dir / kCfgFile);
  validate_cfg(sae.cfg, (dir / kCfgFile).string());
  sae.weights = safetensors::load(dir / kWeightsFile).tensors;
  if (fs::exists(dir / kSparsityFile)) {
    auto sp = safetensors::load(dir / kSparsityFile).tensors;
    for (const auto& [name, t] : sp)
      SAELAB_CHECK(name == "sparsity", FormatError, (dir / kSparsityFile).string(), ", tensor '", name,
                   "': unexpected; the file holds exactly one tensor, 'sparsity'");
    SAELAB_CHECK(sp.count("sparsity"), FormatError, (dir / kSparsityFile).string(),
                 ": missing tensor 'sparsity' [d_sae]");
    sae.log10_density = sp.at("sparsity");
  }
  validate_weights(sae, dir.string());
  return sae;
}

void save_sae_directory(const fs::path& dir_in, const SaeDirectory& sae, bool overwrite) {
  const fs::path dir = strip_trailing_slash(dir_in);
  validate_sae_directory(sae, dir.string());
  const bool exists = fs::exists(dir);
  SAELAB_CHECK(!exists || overwrite, Error, "SAE directory '", dir.string(),
               "' already exists; choose another output path or allow overwriting it");
  SAELAB_CHECK(!exists || fs::is_directory(dir), Error, "cannot save an SAE to '", dir.string(),
               "': it exists and is not a directory");
  const fs::path parent = dir.parent_path().empty() ? fs::path(".") : dir.parent_path();
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = parent / ("." + dir.filename().string() + ".tmp." + pid);
  const fs::path old = parent / ("." + dir.filename().string() + ".old." + pid);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    write_file_atomic(tmp / kCfgFile, sae.cfg.dump(2) + "\n");
    safetensors::save(tmp / kWeightsFile, sae.weights);
    if (sae.log10_density) safetensors::save(tmp / kSparsityFile, {{"sparsity", *sae.log10_density}});
    fsync_dir(tmp);
    if (exists) rename_durable(dir, old);
    rename_durable(tmp, dir);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    if (exists && !fs::exists(dir) && fs::exists(old)) fs::rename(old, dir, ec);
    throw;
  }
  std::error_code ec;
  fs::remove_all(old, ec);
}

}  // namespace saelab
