#include "fakes.hpp"

#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "support/support.hpp"

namespace saelab::test {
namespace {
constexpr std::int64_t kVocab = 12;
constexpr std::int64_t kMaxContext = 64;

torch::Tensor seeded_randn(std::vector<std::int64_t> shape, std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat32));
}
}  // namespace

const std::vector<std::string>& FakeSource::vocab() {
  static const std::vector<std::string> v = {"<|endoftext|>",
                                             "<script>alert(1)</script>",
                                             " the",
                                             "\n",
                                             " cat",
                                             "&amp;",
                                             "\xE2\x82",
                                             "\u202E"
                                             "evil",
                                             "\"quote'",
                                             " sat",
                                             "\t",
                                             "ok"};
  return v;
}

FakeSource::FakeSource(std::int64_t d, std::uint64_t seed) {
  info_.model_id = "fake:linear";
  info_.config_hash = "fake";
  info_.tokenizer_sha256 = "fake";
  info_.vocab_size = kVocab;
  info_.max_context = kMaxContext;
  info_.bos_token = 0;
  info_.eos_token = 0;
  info_.hooks = {{kResidHook, d}, {kAttnHook, d}};
  E_ = seeded_randn({kVocab, d}, seed) * 2.0;
  P_ = seeded_randn({kMaxContext, d}, seed + 1) * 0.5;
  U_ = seeded_randn({d, kVocab}, seed + 2);
  c_ = seeded_randn({kVocab}, seed + 3) * 0.1;
}

std::vector<std::int32_t> FakeSource::tokenize(std::string_view text) const {
  std::vector<std::int32_t> out;
  for (unsigned char b : text) out.push_back(static_cast<std::int32_t>(b % (kVocab - 1) + 1));
  return out;
}

std::string FakeSource::decode(const std::vector<std::int32_t>& tokens) const {
  std::string s;
  for (auto t : tokens) {
    SAELAB_CHECK(t >= 0 && t < kVocab, Error, "fake decode: token ", t, " out of range");
    s += vocab()[static_cast<std::size_t>(t)];
  }
  return s;
}

torch::Tensor FakeSource::activations(const torch::Tensor& tokens) const {
  SAELAB_CHECK(tokens.dim() == 2 && tokens.size(1) <= kMaxContext, Error, "fake: tokens ", tokens.sizes());
  auto h =
      E_.index_select(0, tokens.reshape({-1}).to(torch::kInt64)).view({tokens.size(0), tokens.size(1), -1});
  return h + P_.narrow(0, 0, tokens.size(1)).unsqueeze(0);
}

ModelOutput FakeSource::readout(const torch::Tensor& tokens, const torch::Tensor& h) const {
  ModelOutput out;
  out.logits = at::matmul(h, U_) + c_;
  auto lp = at::log_softmax(out.logits.narrow(1, 0, tokens.size(1) - 1), -1);
  auto next = tokens.narrow(1, 1, tokens.size(1) - 1).to(torch::kInt64).unsqueeze(-1);
  out.loss = -lp.gather(-1, next).squeeze(-1);
  return out;
}

std::map<std::string, torch::Tensor> FakeSource::run_with_hooks(const torch::Tensor& tokens,
                                                                const std::vector<std::string>& hooks) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& h : hooks) {
    SAELAB_CHECK(info_.hooks.count(h), Error, "fake: no hook ", h);
    out[h] = activations(tokens);
  }
  return out;
}

ModelOutput FakeSource::run_with_replacement(const torch::Tensor& tokens, const std::string& hook,
                                             const HookFn& fn, bool want_logits) {
  SAELAB_CHECK(hook == kResidHook, Error, "fake: replacement only at ", kResidHook);
  auto out = readout(tokens, fn(activations(tokens)));
  if (!want_logits) out.logits = torch::Tensor();
  return out;
}

torch::Tensor FakeSource::logit_effects(const torch::Tensor& directions, const std::string& hook) {
  if (hook != kResidHook) return torch::Tensor();
  return at::matmul(directions, U_);
}

TestSae::TestSae(torch::Tensor we, torch::Tensor be, torch::Tensor wd, torch::Tensor bd) {
  W_enc = register_parameter("W_enc", we);
  b_enc = register_parameter("b_enc", be);
  W_dec = register_parameter("W_dec", wd);
  b_dec = register_parameter("b_dec", bd);
}

torch::Tensor TestSae::encode(const torch::Tensor& x) {
  return at::relu(at::matmul(x - b_dec, W_enc) + b_enc);
}
torch::Tensor TestSae::decode(const torch::Tensor& f) {
  return at::matmul(f, W_dec) + b_dec;
}
SaeOutput TestSae::forward(const torch::Tensor& x) {
  SaeOutput o;
  o.latents = encode(x);
  o.reconstruction = decode(o.latents);
  return o;
}
TensorMap TestSae::state() const {
  return {{"W_enc", W_enc}, {"b_enc", b_enc}, {"W_dec", W_dec}, {"b_dec", b_dec}};
}

std::shared_ptr<TestSae> identity_sae(std::int64_t d) {
  auto eye = torch::eye(d);
  auto we = torch::cat({eye, -eye}, 1);  // [d, 2d]
  return std::make_shared<TestSae>(we, torch::zeros({2 * d}), we.t().contiguous(), torch::zeros({d}));
}

std::shared_ptr<TestSae> zero_sae(std::int64_t d, std::int64_t d_sae) {
  return std::make_shared<TestSae>(torch::zeros({d, d_sae}), torch::zeros({d_sae}), torch::zeros({d_sae, d}),
                                   torch::zeros({d}));
}

std::shared_ptr<TestSae> random_sae(std::int64_t d, std::int64_t d_sae, std::uint64_t seed) {
  auto we = seeded_randn({d, d_sae}, seed) / std::sqrt(double(d));
  auto be = torch::full({d_sae}, -0.8f);
  auto wd = seeded_randn({d_sae, d}, seed + 1) / std::sqrt(double(d_sae)) * 2.0;
  auto bd = seeded_randn({d}, seed + 2) * 0.1;
  return std::make_shared<TestSae>(we, be, wd, bd);
}

ActivationRows FakeReader::next_rows() {
  const std::int64_t n = rows_.activations.size(0);
  std::vector<std::int64_t> idx;
  for (std::int64_t i = 0; i < batch_; ++i) idx.push_back((pos_ + i) % n);
  pos_ = (pos_ + batch_) % n;
  auto ix = torch::tensor(idx, torch::kInt64);
  return {rows_.activations.index_select(0, ix), rows_.tokens.index_select(0, ix),
          rows_.sequence.index_select(0, ix), rows_.position.index_select(0, ix)};
}

std::string write_corpus(const std::string& name, const std::string& text) {
  const auto path = scratch_dir() / name;
  write_bytes(path, text);
  return path.string();
}

std::string corpus_text(std::size_t n) {
  std::string s;
  std::uint64_t x = 88172645463325252ULL;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s += static_cast<char>('a' + x % 26);
    if (x % 7 == 0) s += ' ';
  }
  return s;
}

}  // namespace saelab::test
