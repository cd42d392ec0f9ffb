#include "saelab/features/scan.hpp"

#include <chrono>

#include "saelab/core/error.hpp"
#include "saelab/data/corpus.hpp"
#include "saelab/data/harvest_rows.hpp"

namespace saelab {

void ScanChunk::index_rows() {
  const std::int64_t n = x.defined() ? x.size(0) : 0;
  row_sequence.assign(static_cast<std::size_t>(n), -1);
  row_offset.assign(static_cast<std::size_t>(n), -1);
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    const auto& rows = sequences[s].rows;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const std::int64_t r = rows[i];
      if (r < 0) continue;
      SAELAB_CHECK(r < n && row_sequence[static_cast<std::size_t>(r)] < 0, Error, "feature scan: row ", r,
                   " of a chunk of ", n, " rows is mapped twice or out of range (sequence ", sequences[s].seq,
                   ")");
      row_sequence[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(s);
      row_offset[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(i);
    }
  }
  for (std::int64_t r = 0; r < n; ++r)
    SAELAB_CHECK(row_sequence[static_cast<std::size_t>(r)] >= 0, Error, "feature scan: row ", r,
                 " of a chunk belongs to no sequence");
}

namespace {

std::string thousands(std::int64_t v) {
  std::string d = std::to_string(v), out;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return out;
}

class TokenFeatureScan : public FeatureScan {
 public:
  TokenFeatureScan(ActivationSource& source, TokenBatches& tokens, std::string hook, TokenScanOptions opts)
      : source_(source), batches_(tokens), hook_(std::move(hook)), opts_(std::move(opts)) {}

  bool next(ScanChunk& out) override {
    if (rows_ >= opts_.max_tokens) return false;
    const std::int64_t first = batches_.sequences_emitted();
    auto tokens = batches_.next(opts_.batch_size).to(torch::kCPU, torch::kInt64).contiguous();
    if (tokens.size(0) == 0) return false;
    auto keep = rows_to_keep(tokens, opts_.rows);
    const std::int32_t bos = source_.info().bos_token;
    if (opts_.exclude_bos && bos >= 0) keep = keep.logical_and(tokens.ne(bos));
    // Whole sequences up to the one that reaches max_tokens, whatever the batch size.
    const auto cum = keep.sum(1).cumsum(0);
    const std::int64_t need = opts_.max_tokens - rows_;
    const std::int64_t take =
        std::min<std::int64_t>(tokens.size(0), cum.lt(need).sum().item<std::int64_t>() + 1);
    tokens = tokens.narrow(0, 0, take).contiguous();
    keep = keep.narrow(0, 0, take).contiguous();
    const std::int64_t b = tokens.size(0), s = tokens.size(1);
    const auto t0 = std::chrono::steady_clock::now();
    const auto acts = run(tokens);  // [b*s, d]
    forward_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto idx = keep.reshape({-1}).nonzero().squeeze(1);
    out = ScanChunk{};
    out.x = acts.index_select(0, idx.to(acts.device())).to(torch::kCPU, torch::kFloat32).contiguous();
    const auto* tk = tokens.data_ptr<std::int64_t>();
    const auto* kp = keep.data_ptr<bool>();
    std::int64_t row = 0;
    for (std::int64_t i = 0; i < b; ++i) {
      ScanSequence q;
      q.seq = first + i;
      for (std::int64_t p = 0; p < s; ++p) {
        q.tokens.push_back(static_cast<std::int32_t>(tk[i * s + p]));
        q.rows.push_back(kp[i * s + p] ? row++ : -1);
      }
      out.sequences.push_back(std::move(q));
    }
    out.index_rows();
    rows_ += row;
    sequences_ += b;
    seq_len_ = s;
    return true;
  }

  std::int64_t rows_done() const override { return rows_; }
  std::int64_t rows_target() const override { return opts_.max_tokens; }
  double forward_seconds() const override { return forward_s_; }
  std::string description() const override {
    return cat(thousands(rows_), " held-out tokens in ", thousands(sequences_), " sequences of ", seq_len_,
               ", run through ", source_.info().model_id);
  }

 private:
  torch::Tensor run(const torch::Tensor& tokens) {
    auto acts = source_.run_with_hooks(tokens.to(source_.device()), {hook_});
    auto it = acts.find(hook_);
    SAELAB_CHECK(it != acts.end(), Error, "feature scan: model '", source_.info().model_id,
                 "' returned no activations for hook '", hook_, "'");
    const auto& a = it->second;
    SAELAB_CHECK(a.dim() == 3 && a.size(0) == tokens.size(0) && a.size(1) == tokens.size(1), Error,
                 "feature scan: hook '", hook_, "' of model '", source_.info().model_id,
                 "' gave activations ", a.sizes(), " for tokens ", tokens.sizes(),
                 "; expected [batch, seq, d]");
    return a.reshape({-1, a.size(2)});
  }

  ActivationSource& source_;
  TokenBatches& batches_;
  std::string hook_;
  TokenScanOptions opts_;
  std::int64_t rows_ = 0, sequences_ = 0, seq_len_ = 0;
  double forward_s_ = 0;
};

// Rows of one sequence gathered so far, waiting for the sequence to end.
struct PendingSequence {
  std::int64_t seq = -1;
  std::vector<std::int64_t> positions;
  std::vector<std::int32_t> tokens;
  std::vector<torch::Tensor> x;  // [k, d] pieces
};

class StoreFeatureScan : public FeatureScan {
 public:
  StoreFeatureScan(ActivationReader& reader, std::int64_t max_tokens)
      : reader_(reader), max_(max_tokens), epoch_(reader.rows_per_epoch()) {}

  bool next(ScanChunk& out) override {
    std::vector<PendingSequence> done;
    while (done.empty() && !exhausted_) read_batch(done);
    if (done.empty() && pending_.seq >= 0) {  // the last sequence of the scan
      done.push_back(std::move(pending_));
      pending_ = PendingSequence{};
    }
    if (done.empty()) return false;
    out = chunk_of(done);
    return true;
  }

  std::int64_t rows_done() const override { return rows_; }
  std::int64_t rows_target() const override { return std::min(max_, epoch_); }
  double forward_seconds() const override { return 0; }
  std::string description() const override {
    return cat(thousands(rows_), " stored rows of the harvest in ", thousands(sequences_),
               " sequences (no forward pass)");
  }

 private:
  // Reads one reader batch; sequences it completes move to `done`.
  void read_batch(std::vector<PendingSequence>& done) {
    if (read_ >= epoch_ || completed_rows_ >= max_) {
      exhausted_ = true;
      return;
    }
    ActivationRows r = reader_.next_rows();
    std::int64_t n = std::min<std::int64_t>(r.activations.size(0), epoch_ - read_);
    if (n <= 0) {
      exhausted_ = true;
      return;
    }
    const auto x = r.activations.narrow(0, 0, n).to(torch::kCPU, torch::kFloat32).contiguous();
    const auto seq = r.sequence.narrow(0, 0, n).to(torch::kCPU, torch::kInt64).contiguous();
    const auto pos = r.position.narrow(0, 0, n).to(torch::kCPU, torch::kInt64).contiguous();
    const auto tok = r.tokens.narrow(0, 0, n).to(torch::kCPU, torch::kInt32).contiguous();
    const auto* sq = seq.data_ptr<std::int64_t>();
    const auto* ps = pos.data_ptr<std::int64_t>();
    std::int64_t begin = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      check_order(read_ + i, sq[i], ps[i]);
      if (sq[i] != pending_.seq) {
        if (i > begin) pending_.x.push_back(x.narrow(0, begin, i - begin));
        begin = i;
        if (pending_.seq >= 0) {
          completed_rows_ += static_cast<std::int64_t>(pending_.positions.size());
          done.push_back(std::move(pending_));
        }
        pending_ = PendingSequence{};
        pending_.seq = sq[i];
        if (completed_rows_ >= max_) {  // the scan is full: drop the rest
          pending_ = PendingSequence{};
          exhausted_ = true;
          read_ += i;
          return;
        }
      }
      pending_.positions.push_back(ps[i]);
      pending_.tokens.push_back(tok.data_ptr<std::int32_t>()[i]);
      last_seq_ = sq[i];
      last_pos_ = ps[i];
    }
    if (n > begin) pending_.x.push_back(x.narrow(0, begin, n - begin));
    read_ += n;
  }

  void check_order(std::int64_t row, std::int64_t seq, std::int64_t pos) const {
    const bool ordered = seq > last_seq_ || (seq == last_seq_ && pos > last_pos_);
    SAELAB_CHECK(ordered && pos >= 0, Error, "feature scan: stored row ", row, " (sequence ", seq,
                 ", position ", pos, ") follows sequence ", last_seq_, ", position ", last_pos_,
                 "; the scan reads a store in corpus order and needs rows sorted by (sequence, "
                 "position), as saelab harvest writes them. Open the reader with shuffle = false.");
  }

  ScanChunk chunk_of(std::vector<PendingSequence>& done) {
    ScanChunk c;
    std::vector<torch::Tensor> xs;
    std::int64_t row = 0;
    for (auto& p : done) {
      ScanSequence q;
      q.seq = p.seq;
      q.start = p.positions.front();
      const std::int64_t len = p.positions.back() - q.start + 1;
      q.tokens.assign(static_cast<std::size_t>(len), -1);
      q.rows.assign(static_cast<std::size_t>(len), -1);
      for (std::size_t i = 0; i < p.positions.size(); ++i) {
        const auto at = static_cast<std::size_t>(p.positions[i] - q.start);
        q.tokens[at] = p.tokens[i];
        q.rows[at] = row++;
      }
      for (auto& t : p.x) xs.push_back(std::move(t));
      c.sequences.push_back(std::move(q));
    }
    c.x = torch::cat(xs, 0);
    c.index_rows();
    rows_ += row;
    sequences_ += static_cast<std::int64_t>(done.size());
    return c;
  }

  ActivationReader& reader_;
  std::int64_t max_, epoch_;
  std::int64_t read_ = 0, rows_ = 0, sequences_ = 0, completed_rows_ = 0;
  std::int64_t last_seq_ = -1, last_pos_ = -1;
  bool exhausted_ = false;
  PendingSequence pending_;
};

}  // namespace

std::unique_ptr<FeatureScan> token_feature_scan(ActivationSource& source, TokenBatches& tokens,
                                                const std::string& hook, const TokenScanOptions& opts) {
  return std::make_unique<TokenFeatureScan>(source, tokens, hook, opts);
}

std::unique_ptr<FeatureScan> store_feature_scan(ActivationReader& reader, std::int64_t max_tokens) {
  return std::make_unique<StoreFeatureScan>(reader, max_tokens);
}

}  // namespace saelab
