#include "store_test_util.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "saelab/core/version.hpp"

namespace saelab::store_test {
namespace fs = std::filesystem;

float synth_value(std::int64_t seq, std::int64_t pos, std::int64_t col) {
  const double v =
      std::sin(0.37 * double(seq) + 0.11 * double(pos) + 0.013 * double(col)) * double(1 + col % 5) +
      0.25 * double(seq % 3);
  return static_cast<float>(v);
}

std::int32_t synth_token(std::int64_t seq, std::int64_t pos) {
  return static_cast<std::int32_t>((seq * 131 + pos * 17) % 50257);
}

std::int64_t synth_row_count(std::int64_t seq_begin, std::int64_t seq_end) {
  std::int64_t n = 0;
  for (std::int64_t s = seq_begin; s < seq_end; ++s) n += rows_of_sequence(s);
  return n;
}

ActivationRows synth_rows(std::int64_t seq_begin, std::int64_t seq_end, std::int64_t d) {
  const std::int64_t n = synth_row_count(seq_begin, seq_end);
  ActivationRows r;
  r.activations = torch::empty({n, d}, torch::kFloat);
  r.tokens = torch::empty({n}, torch::kInt);
  r.sequence = torch::empty({n}, torch::kLong);
  r.position = torch::empty({n}, torch::kInt);
  float* a = r.activations.data_ptr<float>();
  std::int32_t* tok = r.tokens.data_ptr<std::int32_t>();
  std::int64_t* sq = r.sequence.data_ptr<std::int64_t>();
  std::int32_t* ps = r.position.data_ptr<std::int32_t>();
  std::int64_t i = 0;
  for (std::int64_t s = seq_begin; s < seq_end; ++s) {
    for (std::int64_t p = 0; p < rows_of_sequence(s); ++p, ++i) {
      for (std::int64_t c = 0; c < d; ++c) a[i * d + c] = synth_value(s, p, c);
      tok[i] = synth_token(s, p);
      sq[i] = s;
      ps[i] = static_cast<std::int32_t>(p);
    }
  }
  return r;
}

StoreMeta test_meta(std::int64_t d, const std::string& hook) {
  StoreMeta m;
  m.model_id = "synthetic";
  m.config_hash = "c0ffee";
  m.hook = hook;
  m.d = d;
  m.context_size = 16;
  m.prepend_bos = true;
  m.exclude_bos = true;
  m.tokenizer_sha256 = std::string(64, 'a');
  m.corpus_fingerprint = "corpus-test";
  m.saelab_version = kVersion;
  return m;
}

hdf5_store::Hdf5StoreConfig test_config(RowDtype dtype, std::int64_t shard_rows, std::int64_t chunk_rows) {
  return hdf5_store::Hdf5StoreConfig::with(dtype, shard_rows, chunk_rows);
}

NormStats harvest(const fs::path& dir, const hdf5_store::Hdf5StoreConfig& cfg, std::int64_t d,
                  std::int64_t nseq, std::int64_t batch_seqs, bool resume) {
  auto w = hdf5_store::open_hdf5_writer(dir, test_meta(d), resume, cfg);
  for (std::int64_t s = w->committed_sequences(); s < nseq; s += batch_seqs)
    w->append(synth_rows(s, std::min(nseq, s + batch_seqs), d));
  return w->finish();
}

ActivationRows read_all(const fs::path& dir) {
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  ReaderOptions o;
  o.shuffle = false;
  o.buffer_rows = 1 << 16;
  auto probe = store.open_reader(dir, o);
  o.batch_rows = probe->rows_per_epoch();
  auto reader = store.open_reader(dir, o);
  return reader->next_rows();
}

torch::Tensor rounded(const torch::Tensor& x, RowDtype dtype) {
  switch (dtype) {
    case RowDtype::Float32:
      return x.clone();
    case RowDtype::Float16:
      return x.to(torch::kHalf).to(torch::kFloat);
    case RowDtype::BFloat16:
      return x.to(torch::kBFloat16).to(torch::kFloat);
  }
  return x;
}

}  // namespace saelab::store_test
