// The store writer: staging, shard cuts on sequence boundaries, durable commits, resume.
#include <system_error>
#include <vector>

#include "hdf5_store.hpp"
#include "saelab/core/fs_util.hpp"
#include "shard_file.hpp"

namespace saelab::hdf5_store {
namespace fs = std::filesystem;

namespace {

class Hdf5Writer final : public ActivationStoreWriter {
 public:
  Hdf5Writer(fs::path dir, Manifest manifest, Hdf5StoreConfig cfg)
      : dir_(std::move(dir)),
        manifest_(std::move(manifest)),
        cfg_(std::move(cfg)),
        d_(manifest_.meta.d),
        last_seq_(manifest_.sequences() - 1) {
    const auto chunk = static_cast<std::size_t>(cfg_.layout.chunk_rows);
    st_act_.resize(chunk * static_cast<std::size_t>(d_) * row_dtype_bytes(cfg_.dtype));
    st_tok_.resize(chunk);
    st_seq_.resize(chunk);
    st_pos_.resize(chunk);
  }
  ~Hdf5Writer() override { abandon_shard(); }

  std::int64_t committed_rows() const override { return manifest_.rows(); }
  std::int64_t committed_sequences() const override { return manifest_.sequences(); }

  void append(const ActivationRows& rows) override;
  void commit() override {
    guard([&] {
      if (shard_) close_shard();
    });
  }
  NormStats finish() override;

 private:
  void check_usable() const;
  template <class F>
  void guard(F&& body);
  void check_rows(const ActivationRows& rows) const;
  void append_checked(const float* act, const std::int32_t* tok, const std::int64_t* seq,
                      const std::int32_t* pos, std::int64_t n);
  void stage(const float* act, const std::int32_t* tok, const std::int64_t* seq, const std::int32_t* pos,
             std::int64_t n);
  void flush_staging();
  void open_shard(std::int64_t first_sequence);
  void close_shard();
  void abandon_shard() noexcept;
  void hook(const char* point) {
    if (cfg_.test_hook) cfg_.test_hook(point);
  }
  fs::path shard_tmp_path() const {
    return dir_ / (shard_file_name(static_cast<std::int64_t>(manifest_.shards.size())) + ".tmp");
  }

  fs::path dir_;
  Manifest manifest_;  // what is durable
  Hdf5StoreConfig cfg_;
  std::int64_t d_;
  std::int64_t last_seq_;  // sequence of the last row appended
  bool finished_ = false;
  std::string broken_;  // set by the first failure; the writer refuses further work

  std::unique_ptr<ShardWriter> shard_;  // open temp shard, if any
  std::int64_t shard_rows_ = 0;         // rows in it, staged ones included
  std::int64_t shard_first_seq_ = 0;
  StatsAccumulator shard_stats_;       // over the open shard's rows; merged when it commits
  std::vector<unsigned char> st_act_;  // [chunk_rows, d] on-disk dtype
  std::vector<std::int32_t> st_tok_, st_pos_;
  std::vector<std::int64_t> st_seq_;
  std::int64_t staged_ = 0;
};

// Runs a mutating operation; the first failure poisons the writer, deletes the temp shard and is
// reported with what is still safe on disk.
void Hdf5Writer::check_usable() const {
  SAELAB_CHECK(broken_.empty(), Error, "activation store '", dir_.string(), "': the writer failed earlier (",
               broken_, "); open a new writer with resume=true");
  SAELAB_CHECK(!finished_, Error, "activation store '", dir_.string(), "': finish() was already called");
}

template <class F>
void Hdf5Writer::guard(F&& body) {
  check_usable();
  try {
    body();
  } catch (const std::exception& e) {
    broken_ = e.what();
    abandon_shard();
    throw Error(cat("activation store '", dir_.string(), "': ", e.what(), " -- committed data is intact: ",
                    manifest_.rows(), " rows in ", manifest_.shards.size(), " shards (sequences [0, ",
                    manifest_.sequences(), ")); fix the cause and resume the harvest (resume=true)"));
  }
}

void Hdf5Writer::check_rows(const ActivationRows& r) const {
  const std::string where = cat("activation store '", dir_.string(), "': append");
  SAELAB_CHECK(r.activations.defined() && r.activations.dim() == 2 && r.activations.size(1) == d_, Error,
               where, ": activations must be [n, ", d_, "], got ",
               r.activations.defined() ? cat(r.activations.sizes()) : std::string("undefined"));
  const std::int64_t n = r.activations.size(0);
  for (const auto& [name, t] : {std::pair<const char*, const torch::Tensor*>{"tokens", &r.tokens},
                                {"sequence", &r.sequence},
                                {"position", &r.position}})
    SAELAB_CHECK(t->defined() && t->dim() == 1 && t->size(0) == n, Error, where, ": ", name, " must be [", n,
                 "], got ", t->defined() ? cat(t->sizes()) : std::string("undefined"));
}

void Hdf5Writer::append(const ActivationRows& rows) {
  check_usable();
  check_rows(rows);
  const torch::Tensor act = rows.activations.to(torch::kCPU, torch::kFloat).contiguous();
  const torch::Tensor tok = rows.tokens.to(torch::kCPU, torch::kInt).contiguous();
  const torch::Tensor seq = rows.sequence.to(torch::kCPU, torch::kLong).contiguous();
  const torch::Tensor pos = rows.position.to(torch::kCPU, torch::kInt).contiguous();
  const std::int64_t n = act.size(0);
  const std::int64_t* s = seq.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t prev = i ? s[i - 1] : last_seq_;
    SAELAB_CHECK(s[i] >= prev, Error, "activation store '", dir_.string(), "': append: sequence ", s[i],
                 " (row ", i, ") comes after sequence ", prev, "; rows must arrive in corpus order");
  }
  if (n > 0)
    SAELAB_CHECK(s[0] >= manifest_.sequences(), Error, "activation store '", dir_.string(),
                 "': append: sequence ", s[0], " is already committed (the store holds sequences 0..",
                 manifest_.sequences() - 1,
                 "); commit() only between sequences, and resume at "
                 "committed_sequences()");
  guard([&] {
    append_checked(act.data_ptr<float>(), tok.data_ptr<std::int32_t>(), s, pos.data_ptr<std::int32_t>(), n);
  });
}

void Hdf5Writer::append_checked(const float* act, const std::int32_t* tok, const std::int64_t* seq,
                                const std::int32_t* pos, std::int64_t n) {
  const std::int64_t shard_rows = cfg_.layout.shard_rows;
  const std::int64_t chunk_rows = cfg_.layout.chunk_rows;
  std::int64_t i = 0;
  while (i < n) {
    // A shard ends at the first sequence boundary after it reached shard_rows.
    if (shard_ && shard_rows_ >= shard_rows && seq[i] != last_seq_) close_shard();
    if (!shard_) open_shard(seq[i]);
    std::int64_t j = i + 1;
    const std::int64_t room = chunk_rows - staged_;
    while (j < n && j - i < room && !(shard_rows_ + (j - i) >= shard_rows && seq[j] != seq[j - 1])) ++j;
    stage(act + i * d_, tok + i, seq + i, pos + i, j - i);
    last_seq_ = seq[j - 1];
    i = j;
  }
}

void Hdf5Writer::stage(const float* act, const std::int32_t* tok, const std::int64_t* seq,
                       const std::int32_t* pos, std::int64_t n) {
  const std::size_t row_bytes = static_cast<std::size_t>(d_) * row_dtype_bytes(cfg_.dtype);
  convert_from_f32(cfg_.dtype, act, st_act_.data() + static_cast<std::size_t>(staged_) * row_bytes,
                   static_cast<std::size_t>(n * d_));
  std::copy(tok, tok + n, st_tok_.begin() + staged_);
  std::copy(seq, seq + n, st_seq_.begin() + staged_);
  std::copy(pos, pos + n, st_pos_.begin() + staged_);
  shard_stats_.add_rows(act, n, d_);
  staged_ += n;
  shard_rows_ += n;
  if (staged_ == cfg_.layout.chunk_rows) flush_staging();
}

void Hdf5Writer::flush_staging() {
  if (staged_ == 0) return;
  shard_->write(st_act_.data(), st_tok_.data(), st_seq_.data(), st_pos_.data(), staged_);
  staged_ = 0;
  hook("chunk_written");
}

void Hdf5Writer::open_shard(std::int64_t first_sequence) {
  StoreMeta meta = manifest_.meta;
  shard_ = std::make_unique<ShardWriter>(shard_tmp_path(), meta, cfg_.layout, cfg_.dtype,
                                         static_cast<std::int64_t>(manifest_.shards.size()));
  shard_rows_ = 0;
  shard_first_seq_ = first_sequence;
  shard_stats_ = StatsAccumulator{};
  hook("shard_open");
}

void Hdf5Writer::close_shard() {
  flush_staging();
  const fs::path tmp = shard_tmp_path();
  ShardEntry e;
  e.file = shard_file_name(static_cast<std::int64_t>(manifest_.shards.size()));
  e.rows = shard_rows_;
  e.first_sequence = shard_first_seq_;
  e.end_sequence = last_seq_ + 1;
  const ShardWriter::Written written = shard_->close(e.first_sequence, e.end_sequence);  // fsynced
  shard_.reset();
  hook("shard_closed");
  e.sha256 = written.sha256;
  e.bytes = written.bytes;
  rename_durable(tmp, dir_ / e.file);
  hook("shard_renamed");
  Manifest next = manifest_;
  next.shards.push_back(e);
  next.accumulator.merge(shard_stats_);
  if (next.accumulator.sum.empty()) next.accumulator.sum.assign(static_cast<std::size_t>(d_), 0.0);
  write_manifest(dir_, next);
  manifest_ = std::move(next);
  shard_rows_ = 0;
  hook("manifest_written");
}

void Hdf5Writer::abandon_shard() noexcept {
  if (!shard_) return;
  shard_->abandon();
  shard_.reset();
  std::error_code ec;
  fs::remove(shard_tmp_path(), ec);  // frees the space a full disk needs back
  staged_ = 0;
  shard_rows_ = 0;
}

NormStats Hdf5Writer::finish() {
  NormStats stats;
  guard([&] {
    if (shard_) close_shard();
    Manifest next = manifest_;
    next.complete = true;
    next.stats = next.accumulator.finish();
    if (next.stats->mean.empty()) next.stats->mean.assign(static_cast<std::size_t>(d_), 0.0);
    write_manifest(dir_, next);
    manifest_ = std::move(next);
    stats = *manifest_.stats;
  });
  finished_ = true;
  return stats;
}

void check_layout(const Layout& l) {
  SAELAB_CHECK(l.chunk_rows >= 1 && l.shard_rows >= 1, ConfigError, "hdf5 store: chunk_rows = ", l.chunk_rows,
               " and shard_rows = ", l.shard_rows, " must both be at least 1");
  SAELAB_CHECK(l.compression == "none" || l.compression == "gzip", ConfigError, "hdf5 store: compression '",
               l.compression, "' is not one of none, gzip");
  SAELAB_CHECK(l.compression_level >= 0 && l.compression_level <= 9, ConfigError,
               "hdf5 store: compression_level = ", l.compression_level, " must be 0..9");
}

// Files an interrupted writer leaves behind: a temp shard and temp manifests.
void remove_temp_files(const fs::path& dir) {
  for (const auto& ent : fs::directory_iterator(dir)) {
    const std::string name = ent.path().filename().string();
    const bool temp_shard =
        name.rfind("shard-", 0) == 0 && name.size() > 7 && name.compare(name.size() - 7, 7, ".h5.tmp") == 0;
    const bool temp_manifest = name.rfind(std::string(kManifestName) + ".tmp.", 0) == 0;
    if (temp_shard || temp_manifest) fs::remove(ent.path());
  }
}

Manifest resume_manifest(const fs::path& dir, const StoreMeta& meta, const Layout& layout) {
  Manifest m = read_manifest(dir);
  const std::string where = cat("activation store '", dir.string(), "'");
  SAELAB_CHECK(!m.complete, Error, where, " is already complete (", m.rows(),
               " rows); nothing to resume. Use it as is, or harvest into a new directory");
  const std::string diff = meta_difference(m.meta, meta);
  SAELAB_CHECK(diff.empty(), Error, "cannot resume ", where, ": the harvest's ", diff,
               ". Harvest into a new directory, or fix the configuration");
  SAELAB_CHECK(m.layout.shard_rows == layout.shard_rows && m.layout.chunk_rows == layout.chunk_rows &&
                   m.layout.compression == layout.compression &&
                   m.layout.compression_level == layout.compression_level,
               Error, "cannot resume ", where, ": it was written with shard_rows=", m.layout.shard_rows,
               ", chunk_rows=", m.layout.chunk_rows, ", compression=", m.layout.compression, "/",
               m.layout.compression_level, " but the configuration says shard_rows=", layout.shard_rows,
               ", chunk_rows=", layout.chunk_rows, ", compression=", layout.compression, "/",
               layout.compression_level, "; use the store's values");
  for (const auto& s : m.shards) {
    std::error_code ec;
    const auto size = fs::file_size(dir / s.file, ec);
    SAELAB_CHECK(!ec && size == s.bytes, FormatError, "cannot resume ", where, ": committed shard '",
                 (dir / s.file).string(), "' is ", ec ? std::string("missing") : cat(size, " bytes"),
                 " (manifest: ", s.bytes,
                 " bytes); the store is damaged, check it with "
                 "`saelab store info --verify`");
  }
  remove_temp_files(dir);
  return m;
}

}  // namespace

std::unique_ptr<ActivationStoreWriter> open_hdf5_writer(const fs::path& dir, StoreMeta meta, bool resume,
                                                        const Hdf5StoreConfig& cfg) {
  check_layout(cfg.layout);
  SAELAB_CHECK(meta.d >= 1, Error, "activation store '", dir.string(), "': meta.d = ", meta.d,
               " must be at least 1");
  meta.dtype = row_dtype_name(cfg.dtype);
  Manifest m;
  if (has_manifest(dir)) {
    SAELAB_CHECK(resume, Error, "activation store '", dir.string(), "' already exists (",
                 read_manifest(dir).rows(),
                 " rows); refusing to overwrite it. Resume it "
                 "(resume=true), delete it, or choose another directory");
    m = resume_manifest(dir, meta, cfg.layout);
  } else {
    std::error_code ec;
    SAELAB_CHECK(
        !fs::exists(dir) || fs::is_empty(dir, ec), Error, "'", dir.string(),
        "' exists, is not empty and has no ", kManifestName,
        ": it is not an activation store; refusing to write into it. Choose an empty or new directory");
    fs::create_directories(dir);
    m.meta = meta;
    m.layout = cfg.layout;
    m.accumulator.sum.assign(static_cast<std::size_t>(meta.d), 0.0);
    write_manifest(dir, m);
  }
  return std::make_unique<Hdf5Writer>(dir, std::move(m), cfg);
}

}  // namespace saelab::hdf5_store
