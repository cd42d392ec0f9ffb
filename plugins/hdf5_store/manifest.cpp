#include <cmath>
#include <cstdio>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "store_format.hpp"

namespace saelab::hdf5_store {
namespace fs = std::filesystem;

std::string shard_file_name(std::int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shard-%06lld.h5", static_cast<long long>(index));
  return buf;
}

void StatsAccumulator::add_rows(const float* x_rows, std::int64_t n, std::int64_t d) {
  if (sum.empty()) sum.assign(static_cast<std::size_t>(d), 0.0);
  double* s = sum.data();
  for (std::int64_t r = 0; r < n; ++r) {
    const float* x = x_rows + r * d;
    // Eight independent partial sums keep the loop off the add-latency chain; the order is fixed,
    // so the result is the same however rows are batched.
    double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::int64_t j = 0;
    for (; j + 8 <= d; j += 8)
      for (int k = 0; k < 8; ++k) p[k] += double(x[j + k]) * double(x[j + k]);
    for (; j < d; ++j) p[0] += double(x[j]) * double(x[j]);
    const double sq = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    sum_norm += std::sqrt(sq);
    for (std::int64_t c = 0; c < d; ++c) s[c] += double(x[c]);
  }
  rows += n;
}

void StatsAccumulator::merge(const StatsAccumulator& o) {
  if (o.rows == 0) return;
  if (sum.empty()) sum.assign(o.sum.size(), 0.0);
  for (std::size_t c = 0; c < sum.size() && c < o.sum.size(); ++c) sum[c] += o.sum[c];
  rows += o.rows;
  sum_norm += o.sum_norm;
}

NormStats StatsAccumulator::finish() const {
  NormStats st;
  st.rows = rows;
  st.mean_norm = rows ? sum_norm / double(rows) : 0.0;
  st.mean.resize(sum.size());
  for (std::size_t c = 0; c < sum.size(); ++c) st.mean[c] = rows ? sum[c] / double(rows) : 0.0;
  return st;
}

std::int64_t Manifest::rows() const {
  std::int64_t n = 0;
  for (const auto& s : shards) n += s.rows;
  return n;
}

std::int64_t Manifest::sequences() const {
  return shards.empty() ? 0 : shards.back().end_sequence;
}

nlohmann::json manifest_to_json(const Manifest& m) {
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& s : m.shards)
    shards.push_back({{"file", s.file},
                      {"rows", s.rows},
                      {"first_sequence", s.first_sequence},
                      {"end_sequence", s.end_sequence},
                      {"bytes", s.bytes},
                      {"sha256", s.sha256}});
  nlohmann::json stats = nullptr;
  if (m.stats) stats = {{"rows", m.stats->rows}, {"mean_norm", m.stats->mean_norm}, {"mean", m.stats->mean}};
  return {{"format", kStoreFormat},
          {"format_version", kFormatVersion},
          {"meta", to_json(m.meta)},
          {"layout",
           {{"shard_rows", m.layout.shard_rows},
            {"chunk_rows", m.layout.chunk_rows},
            {"compression", m.layout.compression},
            {"compression_level", m.layout.compression_level}}},
          {"shards", shards},
          {"rows", m.rows()},
          {"sequences", m.sequences()},
          {"accumulator",
           {{"rows", m.accumulator.rows}, {"sum_norm", m.accumulator.sum_norm}, {"sum", m.accumulator.sum}}},
          {"complete", m.complete},
          {"stats", stats}};
}

namespace {
const nlohmann::json& key(const nlohmann::json& j, const char* k, const std::string& where) {
  if (!j.is_object() || !j.contains(k)) throw FormatError(cat(where, ": key '", k, "' is missing"));
  return j.at(k);
}
std::int64_t int_key(const nlohmann::json& j, const char* k, const std::string& where, std::int64_t min) {
  const auto& v = key(j, k, where);
  if (!v.is_number_integer() || v.get<std::int64_t>() < min)
    throw FormatError(cat(where, ": key '", k, "' is ", v.dump(), "; expected an integer >= ", min));
  return v.get<std::int64_t>();
}
std::string str_key(const nlohmann::json& j, const char* k, const std::string& where) {
  const auto& v = key(j, k, where);
  if (!v.is_string()) throw FormatError(cat(where, ": key '", k, "' is ", v.dump(), "; expected a string"));
  return v.get<std::string>();
}
std::vector<double> doubles_key(const nlohmann::json& j, const char* k, const std::string& where,
                                std::size_t n) {
  const auto& v = key(j, k, where);
  bool ok = v.is_array() && (v.empty() || v.size() == n);
  for (std::size_t i = 0; ok && i < v.size(); ++i) ok = v[i].is_number();
  if (!ok) throw FormatError(cat(where, ": key '", k, "' must be an array of ", n, " numbers"));
  return v.get<std::vector<double>>();
}
double double_key(const nlohmann::json& j, const char* k, const std::string& where) {
  const auto& v = key(j, k, where);
  if (!v.is_number()) throw FormatError(cat(where, ": key '", k, "' is ", v.dump(), "; expected a number"));
  return v.get<double>();
}

// "shard-000000.h5", or "parts/<part>/shard-000000.h5" in a joined data-parallel store.
bool is_shard_reference(const std::string& file) {
  if (is_plain_file_name(file)) return true;
  const std::string head = std::string(kPartsDir) + "/";
  if (file.rfind(head, 0) != 0) return false;
  const std::string rest = file.substr(head.size());
  const auto slash = rest.find('/');
  return slash != std::string::npos && is_plain_file_name(rest.substr(0, slash)) &&
         is_plain_file_name(rest.substr(slash + 1));
}

ShardEntry shard_from_json(const nlohmann::json& j, const std::string& where) {
  ShardEntry s;
  s.file = str_key(j, "file", where);
  // Only our own names: a manifest must not point outside its directory.
  if (!is_shard_reference(s.file))
    throw FormatError(
        cat(where, ": file '", s.file,
            "' is not a plain file name like shard-000000.h5 (or parts/<part>/shard-000000.h5)"));
  s.rows = int_key(j, "rows", where, 1);
  s.first_sequence = int_key(j, "first_sequence", where, 0);
  s.end_sequence = int_key(j, "end_sequence", where, s.first_sequence + 1);
  s.bytes = static_cast<std::uint64_t>(int_key(j, "bytes", where, 1));
  s.sha256 = str_key(j, "sha256", where);
  if (s.sha256.size() != 64) throw FormatError(cat(where, ": sha256 '", s.sha256, "' is not 64 hex digits"));
  return s;
}
}  // namespace

Manifest manifest_from_json(const nlohmann::json& j, const std::string& where) {
  if (str_key(j, "format", where) != kStoreFormat)
    throw FormatError(
        cat(where, ": format is '", j["format"].get<std::string>(), "'; expected '", kStoreFormat, "'"));
  const std::int64_t version = int_key(j, "format_version", where, 0);
  if (version != kFormatVersion)
    throw FormatError(cat(where, ": format_version ", version,
                          " is not supported; this saelab reads version ", kFormatVersion));
  Manifest m;
  m.meta = store_meta_from_json(key(j, "meta", where), where + ": meta");
  const auto d = static_cast<std::size_t>(m.meta.d);
  const auto& layout = key(j, "layout", where);
  const std::string lw = where + ": layout";
  m.layout.shard_rows = int_key(layout, "shard_rows", lw, 1);
  m.layout.chunk_rows = int_key(layout, "chunk_rows", lw, 1);
  m.layout.compression = str_key(layout, "compression", lw);
  m.layout.compression_level = int_key(layout, "compression_level", lw, 0);
  if (m.layout.compression != "none" && m.layout.compression != "gzip")
    throw FormatError(cat(lw, ": compression '", m.layout.compression, "' is not one of none, gzip"));
  const auto& shards = key(j, "shards", where);
  if (!shards.is_array()) throw FormatError(cat(where, ": key 'shards' must be an array"));
  for (std::size_t i = 0; i < shards.size(); ++i) {
    m.shards.push_back(shard_from_json(shards[i], cat(where, ": shards[", i, "]")));
    if (i > 0 && m.shards[i].first_sequence < m.shards[i - 1].end_sequence)
      throw FormatError(cat(where, ": shards[", i, "] starts at sequence ", m.shards[i].first_sequence,
                            " before shards[", i - 1, "] ends (", m.shards[i - 1].end_sequence, ")"));
  }
  const auto& acc = key(j, "accumulator", where);
  m.accumulator.rows = int_key(acc, "rows", where + ": accumulator", 0);
  m.accumulator.sum_norm = double_key(acc, "sum_norm", where + ": accumulator");
  m.accumulator.sum = doubles_key(acc, "sum", where + ": accumulator", d);
  if (m.accumulator.rows != m.rows())
    throw FormatError(
        cat(where, ": accumulator covers ", m.accumulator.rows, " rows but the shards hold ", m.rows()));
  const auto& complete = key(j, "complete", where);
  if (!complete.is_boolean()) throw FormatError(cat(where, ": key 'complete' must be true or false"));
  m.complete = complete.get<bool>();
  const auto& st = key(j, "stats", where);
  if (!st.is_null()) {
    NormStats s;
    s.rows = int_key(st, "rows", where + ": stats", 0);
    s.mean_norm = double_key(st, "mean_norm", where + ": stats");
    s.mean = doubles_key(st, "mean", where + ": stats", d);
    m.stats = std::move(s);
  }
  return m;
}

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name[0] != '.';
}

fs::path shard_path(const fs::path& dir, const ShardEntry& e) {
  const fs::path named = dir / e.file;
  std::error_code ec;
  if (!fs::exists(named, ec)) return named;  // the shard reader says it is missing, naming it
  if (auto p = path_inside(dir, e.file)) return *p;
  throw FormatError(cat(named.string(), " is listed in ", kManifestName,
                        " but resolves to a file outside the store directory (a symlink); saelab reads "
                        "only files inside it"));
}

bool has_manifest(const fs::path& dir) {
  return fs::exists(dir / kManifestName);
}

Manifest read_manifest(const fs::path& dir) {
  const fs::path path = dir / kManifestName;
  if (!fs::exists(path))
    throw FormatError(cat("'", dir.string(), "' is not an activation store: it has no ", kManifestName,
                          " (create one with `saelab harvest`)"));
  const std::string text = read_file(path, kMaxManifestBytes, "store manifest");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
    throw FormatError(cat(path.string(), ": not valid JSON: ", e.what()));
  }
  return manifest_from_json(j, path.string());
}

void write_manifest(const fs::path& dir, const Manifest& m) {
  write_file_atomic(dir / kManifestName, manifest_to_json(m).dump(1) + "\n");
}

std::string meta_difference(const StoreMeta& want, const StoreMeta& got) {
  auto diff = [](const char* name, const auto& w, const auto& g) -> std::string {
    if (w == g) return "";
    return cat(name, " is '", g, "' but the store has '", w, "'");
  };
  for (std::string s :
       {diff("model_id", want.model_id, got.model_id), diff("config_hash", want.config_hash, got.config_hash),
        diff("hook", want.hook, got.hook), diff("d", want.d, got.d), diff("dtype", want.dtype, got.dtype),
        diff("context_size", want.context_size, got.context_size),
        diff("prepend_bos", want.prepend_bos, got.prepend_bos),
        diff("exclude_bos", want.exclude_bos, got.exclude_bos),
        diff("tokenizer_sha256", want.tokenizer_sha256, got.tokenizer_sha256),
        diff("corpus_fingerprint", want.corpus_fingerprint, got.corpus_fingerprint)})
    if (!s.empty()) return s;
  return "";
}

}  // namespace saelab::hdf5_store
