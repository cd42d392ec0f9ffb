// Generation on the real SmolLM2-135M: the key/value cache gives the logits and the greedy tokens
// of running the whole sequence each step; seeded sampling is reproducible; next_token's choice
// rules; and the errors.
#include <chrono>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "llama_test_util.hpp"
#include "saelab/models/generate.hpp"

namespace saelab::llama {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(LlamaGenerate, CachedLogitsEqualTheFullRun) {
  LlamaSource& src = test::smollm2();
  const auto ids =
      src.tokenize("The Congress of the United States shall have power to lay and collect taxes");
  std::vector<std::int64_t> v(ids.begin(), ids.end());
  const auto tokens = torch::tensor(v, torch::kInt64).unsqueeze(0);
  c10::InferenceMode guard;
  models::RunPlan plan;
  plan.n_blocks = src.config().n_layer;
  plan.final_ln = plan.unembed = true;
  const auto full = src.model().run(tokens, plan);  // [1, T, vocab]
  // The prompt in three pieces (5 tokens, then 1, then the rest) through one cache.
  KvCache cache;
  const std::int64_t T = tokens.size(1);
  std::vector<torch::Tensor> parts;
  parts.push_back(src.model().run_cached(tokens.narrow(1, 0, 5), cache, plan));
  parts.push_back(src.model().run_cached(tokens.narrow(1, 5, 1), cache, plan));
  parts.push_back(src.model().run_cached(tokens.narrow(1, 6, T - 6), cache, plan));
  EXPECT_EQ(cache.length, T);
  const auto d = test::compare("cached logits", at::cat(parts, 1), full);
  EXPECT_LE(d.rel(), 1e-5);
}

TEST(LlamaGenerate, GreedyWithTheCacheEqualsWithout) {
  LlamaSource& src = test::smollm2();
  const auto prompt = src.tokenize("Fellow citizens of the Senate and of the House of Representatives:");
  GenerateOptions o;
  o.max_new_tokens = 64;
  auto t0 = std::chrono::steady_clock::now();
  const auto cached = src.generate(prompt, o);
  const double cached_s = seconds_since(t0);
  o.use_cache = false;
  t0 = std::chrono::steady_clock::now();
  const auto plain = src.generate(prompt, o);
  const double plain_s = seconds_since(t0);
  std::printf("64 greedy tokens: %.2f s with the cache, %.2f s without\n  \"%s\"\n", cached_s, plain_s,
              src.decode(cached).c_str());
  ASSERT_EQ(cached.size(), 64u);
  EXPECT_EQ(cached, plain);
}

TEST(LlamaGenerate, TheSameSeedGivesTheSameText) {
  LlamaSource& src = test::smollm2();
  const auto prompt = src.tokenize("The state of the Union is");
  GenerateOptions o;
  o.max_new_tokens = 24;
  o.temperature = 0.9;
  o.top_p = 0.95;
  o.seed = 7;
  const auto a = src.generate(prompt, o), b = src.generate(prompt, o);
  o.seed = 8;
  const auto c = src.generate(prompt, o);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // The stop token ends generation right after it.
  GenerateOptions g;
  g.max_new_tokens = 20;
  const auto greedy = src.generate(prompt, g);
  g.stop_token = greedy[3];
  const auto stopped = src.generate(prompt, g);
  EXPECT_LE(stopped.size(), 4u);
  EXPECT_EQ(stopped.back(), greedy[3]);
}

TEST(NextToken, GreedyTopPAndTies) {
  DetRng rng(1);
  GenerateOptions o;
  EXPECT_EQ(models::next_token(torch::tensor({1.0f, 3.0f, 3.0f, 2.0f}), o, rng), 1);  // ties: lower id
  o.temperature = 1.0;
  o.top_p = 1e-9;  // only the most probable token is left
  for (int i = 0; i < 20; ++i) EXPECT_EQ(models::next_token(torch::tensor({1.0f, 5.0f, 2.0f}), o, rng), 1);
  // Two equally likely tokens and a negligible third: both of the first two come up, the third never.
  o.top_p = 1.0;
  int seen[3] = {0, 0, 0};
  for (int i = 0; i < 400; ++i) ++seen[models::next_token(torch::tensor({10.0f, 10.0f, -30.0f}), o, rng)];
  EXPECT_GT(seen[0], 150);
  EXPECT_GT(seen[1], 150);
  EXPECT_EQ(seen[2], 0);
}

TEST(LlamaGenerate, ErrorsSayWhatIsAllowed) {
  LlamaSource& src = test::smollm2();
  GenerateOptions o;
  o.max_new_tokens = src.info().max_context;
  auto msg = saelab::test::error_of([&] { src.generate({1, 2, 3}, o); });
  EXPECT_NE(msg.find("more than the model's context"), std::string::npos) << msg;
  o.max_new_tokens = 4;
  o.top_p = 0;
  msg = saelab::test::error_of([&] { src.generate({1, 2, 3}, o); });
  EXPECT_NE(msg.find("top_p is 0; allowed: (0, 1]"), std::string::npos) << msg;
  o.top_p = 1;
  msg = saelab::test::error_of([&] { src.generate({}, o); });
  EXPECT_NE(msg.find("needs a prompt"), std::string::npos) << msg;
}

}  // namespace
}  // namespace saelab::llama
