#include "saelab/interfaces/activation_store.hpp"

#include "saelab/core/error.hpp"

namespace saelab {

std::int64_t batch_part_rows(std::int64_t part, std::int64_t parts, std::int64_t batch_rows,
                             const std::string& where) {
  SAELAB_CHECK(parts >= 1 && part >= 0 && part < parts && batch_rows % parts == 0, Error, where,
               ": reading part ", part, " of ", parts, " of a batch of ", batch_rows,
               " rows; parts must divide the batch, 0 ≤ part < parts");
  return batch_rows / parts;
}

ActivationRows ActivationReader::next_part(std::int64_t part, std::int64_t parts, bool with_provenance) {
  ActivationRows all = with_provenance ? next_rows() : ActivationRows{next_batch(), {}, {}, {}};
  const std::int64_t n = batch_part_rows(part, parts, all.activations.size(0), "activation reader");
  ActivationRows out;
  for (auto [from, to] : {std::pair{&all.activations, &out.activations}, std::pair{&all.tokens, &out.tokens},
                          std::pair{&all.sequence, &out.sequence}, std::pair{&all.position, &out.position}})
    if (from->defined()) *to = from->narrow(0, part * n, n);
  return out;
}

void ActivationStore::join_parts(const std::filesystem::path& dir,
                                 const std::vector<std::filesystem::path>&) {
  throw ConfigError(cat("this store plugin cannot join the parts of a data-parallel harvest into ",
                        dir.string(), "; harvest in one process, or use the hdf5 store"));
}

nlohmann::json to_json(const StoreMeta& m) {
  return {{"model_id", m.model_id},
          {"config_hash", m.config_hash},
          {"hook", m.hook},
          {"d", m.d},
          {"dtype", m.dtype},
          {"context_size", m.context_size},
          {"prepend_bos", m.prepend_bos},
          {"exclude_bos", m.exclude_bos},
          {"tokenizer_sha256", m.tokenizer_sha256},
          {"corpus_fingerprint", m.corpus_fingerprint},
          {"saelab_version", m.saelab_version}};
}

namespace {
template <class T>
T field(const nlohmann::json& j, const char* key, const char* type, const std::string& where) {
  if (!j.contains(key)) throw FormatError(cat(where, ": store metadata has no key '", key, "' (", type, ")"));
  const auto& v = j.at(key);
  bool ok = false;
  if constexpr (std::is_same_v<T, std::string>)
    ok = v.is_string();
  else if constexpr (std::is_same_v<T, bool>)
    ok = v.is_boolean();
  else
    ok = v.is_number_integer();
  if (!ok)
    throw FormatError(cat(where, ": store metadata key '", key, "' is ", v.dump(), "; expected ", type));
  return v.get<T>();
}
}  // namespace

StoreMeta store_meta_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw FormatError(cat(where, ": store metadata is not a JSON object"));
  StoreMeta m;
  m.model_id = field<std::string>(j, "model_id", "string", where);
  m.config_hash = field<std::string>(j, "config_hash", "string", where);
  m.hook = field<std::string>(j, "hook", "string", where);
  m.d = field<std::int64_t>(j, "d", "integer", where);
  m.dtype = field<std::string>(j, "dtype", "string", where);
  m.context_size = field<std::int64_t>(j, "context_size", "integer", where);
  m.prepend_bos = field<bool>(j, "prepend_bos", "boolean", where);
  m.exclude_bos = field<bool>(j, "exclude_bos", "boolean", where);
  m.tokenizer_sha256 = field<std::string>(j, "tokenizer_sha256", "string", where);
  m.corpus_fingerprint = field<std::string>(j, "corpus_fingerprint", "string", where);
  m.saelab_version = field<std::string>(j, "saelab_version", "string", where);
  if (m.d < 1) throw FormatError(cat(where, ": store metadata d = ", m.d, " must be at least 1"));
  if (m.dtype != "float32" && m.dtype != "float16" && m.dtype != "bfloat16")
    throw FormatError(
        cat(where, ": store metadata dtype '", m.dtype, "' is not one of float32, float16, bfloat16"));
  return m;
}

}  // namespace saelab
