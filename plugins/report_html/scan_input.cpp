#include "scan_input.hpp"

#include "html_text.hpp"
#include "saelab/core/error.hpp"
#include "saelab/data/harvest_rows.hpp"

namespace saelab::report {

void TokenTable::set(std::int64_t seq, std::int64_t pos, std::int32_t token) {
  auto& v = seqs_[seq];
  if (static_cast<std::int64_t>(v.size()) <= pos) v.resize(static_cast<std::size_t>(pos) + 1, -1);
  v[static_cast<std::size_t>(pos)] = token;
}

std::int32_t TokenTable::get(std::int64_t seq, std::int64_t pos) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end() || pos < 0 || pos >= static_cast<std::int64_t>(it->second.size())) return -1;
  return it->second[static_cast<std::size_t>(pos)];
}

std::int64_t TokenTable::length(std::int64_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : static_cast<std::int64_t>(it->second.size());
}

namespace {

class TokenScan : public ScanInput {
 public:
  TokenScan(ActivationSource& source, TokenBatches& tokens, std::string hook, TokenScanOptions opts)
      : source_(source), batches_(tokens), hook_(std::move(hook)), opts_(opts) {}

  bool next(ScanBatch& out) override {
    torch::Tensor tokens, x;
    if (!replay_) {
      if (exhausted_ || static_cast<std::int64_t>(tokens_.size()) >= opts_.batches) return false;
      tokens = batches_.next(opts_.batch_size);
      if (tokens.size(0) == 0) {
        exhausted_ = true;
        return false;
      }
      tokens = tokens.to(torch::kCPU, torch::kInt64).contiguous();
      first_seq_.push_back(sequences_);
      remember(tokens, sequences_);
      x = run(tokens);
      const std::int64_t bytes = x.numel() * static_cast<std::int64_t>(x.element_size());
      const bool keep = cached_bytes_ + bytes <= opts_.cache_bytes;
      cache_.push_back(keep ? x : torch::Tensor());
      if (keep) cached_bytes_ += bytes;
      tokens_.push_back(tokens);
      cursor_ = tokens_.size();
      sequences_ += tokens.size(0);
      rows_ += tokens.numel();
    } else {
      if (cursor_ >= tokens_.size()) return false;
      tokens = tokens_[cursor_];
      x = cache_[cursor_].defined() ? cache_[cursor_] : run(tokens);
      ++cursor_;
    }
    fill(out, tokens, x, first_seq_[cursor_ - 1]);
    return true;
  }

  void rewind() override {
    replay_ = true;
    cursor_ = 0;
  }
  const TokenTable& tokens() const override { return table_; }
  std::int64_t rows_scanned() const override { return rows_; }
  std::string description() const override {
    const std::int64_t len = tokens_.empty() ? 0 : tokens_.front().size(1);
    return cat(html::count(rows_), " tokens in ", html::count(sequences_), " sequences of ", len);
  }

 private:
  torch::Tensor run(const torch::Tensor& tokens) {
    auto acts = source_.run_with_hooks(tokens.to(source_.device()), {hook_});
    auto it = acts.find(hook_);
    SAELAB_CHECK(it != acts.end(), Error, "report: model '", source_.info().model_id,
                 "' returned no activations for hook '", hook_, "'");
    const auto& a = it->second;
    SAELAB_CHECK(a.dim() == 3 && a.size(0) == tokens.size(0) && a.size(1) == tokens.size(1), Error,
                 "report: hook '", hook_, "' of model '", source_.info().model_id, "' gave activations ",
                 a.sizes(), " for tokens ", tokens.sizes(), "; expected [batch, seq, d]");
    return a.reshape({-1, a.size(2)});
  }

  void remember(const torch::Tensor& tokens, std::int64_t first_seq) {
    const auto* t = tokens.data_ptr<std::int64_t>();
    const std::int64_t b = tokens.size(0), s = tokens.size(1);
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t p = 0; p < s; ++p)
        table_.set(first_seq + i, p, static_cast<std::int32_t>(t[i * s + p]));
  }

  void fill(ScanBatch& out, const torch::Tensor& tokens, const torch::Tensor& x,
            std::int64_t first_seq) const {
    const std::int64_t b = tokens.size(0), s = tokens.size(1);
    auto idx = torch::arange(b * s, torch::kInt64);
    out.x = x;
    out.seq = idx.div(s, "floor") + first_seq;
    out.pos = idx.remainder(s);
    const std::int32_t bos = source_.info().bos_token;
    out.include =
        (opts_.exclude_bos && bos >= 0) ? tokens.reshape({-1}).ne(bos) : torch::ones({b * s}, torch::kBool);
    out.include = out.include.logical_and(rows_to_keep(tokens, opts_.rows).reshape({-1}));
    out.seq_len = s;
  }

  ActivationSource& source_;
  TokenBatches& batches_;
  std::string hook_;
  TokenScanOptions opts_;
  std::vector<torch::Tensor> tokens_, cache_;  // per batch: [b, s] int64, [b*s, d] or undefined
  std::vector<std::int64_t> first_seq_;
  std::int64_t cached_bytes_ = 0, sequences_ = 0, rows_ = 0;
  std::size_t cursor_ = 0;
  bool replay_ = false, exhausted_ = false;
  TokenTable table_;
};

class ReaderScan : public ScanInput {
 public:
  ReaderScan(ActivationReader& reader, std::int64_t batches)
      : reader_(reader), batches_(batches), start_(reader.cursor()), epoch_(reader.rows_per_epoch()) {}

  bool next(ScanBatch& out) override {
    if (done_batches_ >= batches_ || done_rows_ >= epoch_) return false;
    ActivationRows rows = reader_.next_rows();
    std::int64_t n = rows.activations.size(0);
    if (n == 0) return false;
    n = std::min(n, epoch_ - done_rows_);
    out.x = rows.activations.narrow(0, 0, n);
    out.seq = rows.sequence.narrow(0, 0, n).to(torch::kCPU, torch::kInt64);
    out.pos = rows.position.narrow(0, 0, n).to(torch::kCPU, torch::kInt64);
    out.include = torch::ones({n}, torch::kBool);
    out.seq_len = 0;
    if (!replay_) {
      auto tok = rows.tokens.narrow(0, 0, n).to(torch::kCPU, torch::kInt64).contiguous();
      auto seq = out.seq.contiguous(), pos = out.pos.contiguous();
      for (std::int64_t i = 0; i < n; ++i)
        table_.set(seq.data_ptr<std::int64_t>()[i], pos.data_ptr<std::int64_t>()[i],
                   static_cast<std::int32_t>(tok.data_ptr<std::int64_t>()[i]));
      rows_ += n;
    }
    ++done_batches_;
    done_rows_ += n;
    return true;
  }

  void rewind() override {
    reader_.restore(start_);
    replay_ = true;
    done_batches_ = done_rows_ = 0;
  }
  const TokenTable& tokens() const override { return table_; }
  std::int64_t rows_scanned() const override { return rows_; }
  std::string description() const override {
    return cat(html::count(rows_), " stored activation rows (", html::count(table_.sequences()),
               " sequences)");
  }

 private:
  ActivationReader& reader_;
  std::int64_t batches_;
  nlohmann::json start_;
  std::int64_t epoch_, done_batches_ = 0, done_rows_ = 0, rows_ = 0;
  bool replay_ = false;
  TokenTable table_;
};

}  // namespace

std::unique_ptr<ScanInput> token_scan(ActivationSource& source, TokenBatches& tokens, const std::string& hook,
                                      const TokenScanOptions& opts) {
  return std::make_unique<TokenScan>(source, tokens, hook, opts);
}

std::unique_ptr<ScanInput> reader_scan(ActivationReader& reader, std::int64_t batches) {
  return std::make_unique<ReaderScan>(reader, batches);
}

}  // namespace saelab::report
