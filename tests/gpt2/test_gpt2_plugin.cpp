// The gpt2 plugin library as the host loads it: manifest, registration, options, creation.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/registry.hpp"
#include "test_util.hpp"

namespace saelab {
namespace {

namespace fs = std::filesystem;

Options::Entry value(OptionValue v) {
  Options::Entry e;
  e.value = std::move(v);
  e.from_default = false;
  return e;
}

struct Loaded {
  Registry registry;
  const FactoryInfo* info = nullptr;
};

void load(Loaded& l) {
  const auto lib = load_plugin_library(l.registry, fs::path(SAELAB_PLUGIN_DIR) / "libsaelab_plugin_gpt2.so");
  EXPECT_EQ(lib.plugin, "gpt2");
  l.info = l.registry.find(ActivationSource::kKind, "gpt2");
  ASSERT_NE(l.info, nullptr);
}

TEST(Gpt2Plugin, CreatesARandomModelThroughTheRegistry) {
  Loaded l;
  load(l);
  const auto* seed = l.info->schema.find("seed");
  ASSERT_NE(seed, nullptr);
  EXPECT_TRUE(seed->allow_auto);
  auto opts = default_options(l.info->schema, "harvest.source");
  opts.set("init", value(std::string("random")));
  opts.set("n_layer", value(std::int64_t{2}));
  opts.set("n_head", value(std::int64_t{2}));
  opts.set("n_embd", value(std::int64_t{8}));
  opts.set("n_positions", value(std::int64_t{16}));
  opts.set("vocab_size", value(std::int64_t{30}));
  PluginContext ctx;
  ctx.seed = 77;  // seed is auto by default: the run's seed
  ctx.run_dir = test::scratch_dir();
  auto src = l.registry.create<ActivationSource>("gpt2", opts, ctx);
  EXPECT_EQ(src->info().model_id, "random:77");
  EXPECT_EQ(src->info().vocab_size, 30);
  EXPECT_TRUE(fs::exists(ctx.run_dir / "gpt2-random-L2-H2-D8-P16-V30-seed77" / "model.safetensors"));
  const auto acts = src->run_with_hooks(at::zeros({1, 5}, at::kLong), {"blocks.1.hook_resid_post"});
  EXPECT_EQ(acts.at("blocks.1.hook_resid_post").sizes(), (at::IntArrayRef{1, 5, 8}));
}

TEST(Gpt2Plugin, UnknownModelSaysHowToFetchIt) {
  Loaded l;
  load(l);
  auto opts = default_options(l.info->schema, "harvest.source");
  opts.set("model", value(std::string("no-such-org/no-such-model")));
  ::setenv("SAELAB_CACHE", test::scratch_dir().c_str(), 1);
  try {
    l.registry.create<ActivationSource>("gpt2", opts, PluginContext{});
    ADD_FAILURE() << "created a source for a model that does not exist";
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::printf("  %s\n", msg.c_str());
    EXPECT_NE(msg.find("saelab fetch-model no-such-org/no-such-model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("harvest.source.model"), std::string::npos) << msg;
  }
  ::unsetenv("SAELAB_CACHE");
}

TEST(Gpt2Plugin, SizesThatDoNotSplitIntoHeadsAreAConfigError) {
  Loaded l;
  load(l);
  auto opts = default_options(l.info->schema, "harvest.source");
  opts.set("init", value(std::string("random")));
  opts.set("n_embd", value(std::int64_t{100}));
  opts.set("n_head", value(std::int64_t{12}));
  try {
    l.registry.create<ActivationSource>("gpt2", opts, PluginContext{});
    ADD_FAILURE() << "accepted n_embd 100 with 12 heads";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not divisible by n_head = 12"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace saelab
