// Several SAEs from one read of the data: SharedReader hands every consumer the batches the source
// gives, and trainers stepped in turn over it train exactly as they would alone.
#include <gtest/gtest.h>

#include "saelab/data/memory_reader.hpp"
#include "saelab/data/shared_reader.hpp"
#include "test_data.hpp"

namespace saelab {
namespace {

ReaderOptions options(std::int64_t batch) {
  ReaderOptions ro;
  ro.seed = 9;
  ro.batch_rows = batch;
  return ro;
}

TEST(SharedReader, EveryConsumerSeesTheSourceStreamReadOnce) {
  const torch::Tensor rows = torch::randn({500, 6});
  TensorActivationReader alone(rows, options(64)), source(rows, options(64));
  SharedReader shared(source, 3);
  // Consumer 0 reads four batches ahead (an initialisation sample) and goes back.
  const auto start = shared.consumer(0).cursor();
  for (int i = 0; i < 4; ++i) shared.consumer(0).next_batch();
  shared.consumer(0).restore(start);
  EXPECT_EQ(shared.queued(), 4);
  for (int step = 0; step < 20; ++step) {
    const torch::Tensor expected = alone.next_batch();
    for (int c = 0; c < 3; ++c) {
      ASSERT_TRUE(shared.consumer(c).next_batch().equal(expected)) << "step " << step << " consumer " << c;
    }
    EXPECT_LE(shared.queued(), step < 4 ? 4 - step - 1 : 0) << "step " << step;
  }
  EXPECT_EQ(shared.source_batches(), 20) << "each batch is read from the source once";
  EXPECT_EQ(shared.consumer(2).cursor(), alone.cursor());
}

TEST(SharedReader, ResumeMovesTheSourceOnlyWhenEveryConsumerIsAtTheHead) {
  const torch::Tensor rows = torch::randn({500, 6});
  TensorActivationReader alone(rows, options(32)), source(rows, options(32));
  for (int i = 0; i < 7; ++i) alone.next_batch();
  const auto at7 = alone.cursor();
  SharedReader shared(source, 2);
  shared.consumer(0).restore(at7);  // both at the head: the source moves
  shared.consumer(1).restore(at7);  // the source's own position now
  const torch::Tensor expected = alone.next_batch();
  EXPECT_TRUE(shared.consumer(0).next_batch().equal(expected));
  EXPECT_TRUE(shared.consumer(1).next_batch().equal(expected));
  // Consumer 0 one batch ahead: consumer 1 cannot jump elsewhere.
  shared.consumer(0).next_batch();
  const std::string err = test::error_of([&] { shared.consumer(1).restore(at7); });
  std::printf("restore elsewhere: %s\n", err.c_str());
  EXPECT_TRUE(test::contains(err, "resume together, from checkpoints of the same step")) << err;
}

std::unique_ptr<Trainer> make_trainer(const test::RunSpec& spec, ActivationReader& reader,
                                      std::shared_ptr<SaeArchitecture>& sae) {
  sae = spec.make_sae();
  TrainerInputs in;
  in.reader = &reader;
  in.sae = sae;
  in.losses = spec.make_losses();
  in.run_dir = spec.run_dir;
  in.sae_meta.model_name = "synthetic";
  in.sae_meta.hook_name = "synthetic.hook";
  in.sae_meta.context_size = 128;
  return std::make_unique<Trainer>(spec.cfg, std::move(in));
}

// Three configurations stepped in turn over one reader equal the same three trained alone, bit for
// bit, with resampling (which reads ahead) in the middle.
TEST(SharedReader, TrainersSteppedInTurnEqualTrainersAlone) {
  std::vector<test::RunSpec> alone, group;
  const std::vector<std::pair<std::string, test::Values>> configs = {
      {"topk", {{"d_in", std::int64_t(32)}, {"d_sae", std::int64_t(96)}, {"k", std::int64_t(4)}}},
      {"topk", {{"d_in", std::int64_t(32)}, {"d_sae", std::int64_t(96)}, {"k", std::int64_t(8)}}},
      {"relu_l1", {{"d_in", std::int64_t(32)}, {"d_sae", std::int64_t(64)}}}};
  std::vector<std::shared_ptr<SaeArchitecture>> alone_saes;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    for (auto* list : {&alone, &group}) {
      list->push_back(test::small_run(cat(list == &alone ? "alone_" : "group_", i)));
      const test::LossList losses = configs[i].first == "relu_l1"
                                        ? test::LossList{{"mse", {}}, {"l1", {{"coefficient", 0.1}}}}
                                        : test::LossList{{"mse", {}}, {"auxk", {}}};
      test::use_plugins(list->back(), configs[i].first, configs[i].second, losses, 3 + i);
    }
    alone_saes.push_back(test::train(alone.back()).sae);
  }
  ReaderOptions ro;
  ro.seed = group[0].cfg.seed;
  ro.batch_rows = group[0].cfg.batch_size;
  TensorActivationReader source(group[0].data, ro);
  SharedReader shared(source, 3);
  std::vector<std::shared_ptr<SaeArchitecture>> saes(3);
  std::vector<std::unique_ptr<Trainer>> trainers;
  for (int i = 0; i < 3; ++i) trainers.push_back(make_trainer(group[i], shared.consumer(i), saes[i]));
  for (auto& t : trainers) EXPECT_EQ(t->start(), 0);
  for (bool any = true; any;) {
    any = false;
    for (auto& t : trainers) any = t->advance() || any;
  }
  for (int i = 2; i >= 0; --i) EXPECT_EQ(trainers[i]->finish().status, "completed");
  double worst = 0;
  for (int i = 0; i < 3; ++i)
    for (const auto& [name, t] : alone_saes[i]->state())
      worst = std::max(worst, test::max_abs_diff(t, saes[i]->state().at(name)));
  const std::int64_t steps = group[0].cfg.total_steps();
  std::printf(
      "3 SAEs stepped in turn over one reader vs alone: max |diff| = %.3g; %lld batches read for %lld "
      "steps each (alone: %lld)\n",
      worst, static_cast<long long>(shared.source_batches()), static_cast<long long>(steps),
      static_cast<long long>(3 * shared.source_batches()));
  EXPECT_EQ(worst, 0.0);
  EXPECT_LT(shared.source_batches(), 2 * steps) << "the batches were read once, not once per SAE";
}

}  // namespace
}  // namespace saelab
