#include <gtest/gtest.h>

#include "saelab/core/options.hpp"

namespace saelab {
namespace {

TEST(Options, SchemaDescribesDefaultsAndRanges) {
  OptionSchema s;
  s.integer("d_sae", 4096, "Latents").at_least(1);
  s.real("lr", 4e-4, "Learning rate").above(0).at_most(1);
  s.integer("threads", -1, "Threads").autoable().at_least(1);
  s.choice("device", "auto", {"auto", "cpu"}, "Device");
  EXPECT_EQ(s.find("d_sae")->default_str(), "4096");
  EXPECT_EQ(s.find("d_sae")->range_str(), "≥ 1");
  EXPECT_EQ(s.find("lr")->default_str(), "0.0004");
  EXPECT_EQ(s.find("lr")->range_str(), "> 0, ≤ 1");
  EXPECT_EQ(s.find("threads")->default_str(), "auto");
  EXPECT_EQ(s.find("device")->range_str(), "one of auto, cpu");
  EXPECT_THROW(s.integer("d_sae", 1, "again"), Error);
}

TEST(Options, DefaultsAndFailCarryTheKeyPath) {
  OptionSchema s;
  s.integer("k", 32, "Active latents").at_least(1);
  Options o = default_options(s, "train.sae");
  EXPECT_EQ(o.integer("k"), 32);
  EXPECT_FALSE(o.is_set("k"));
  try {
    o.fail("k", "must be at most d_sae (16)");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "<default>: train.sae.k: must be at most d_sae (16)");
  }
  EXPECT_THROW(o.string("k"), Error);  // accessor/schema mismatch is reported, not UB
  EXPECT_THROW(o.integer("nope"), Error);
}

}  // namespace
}  // namespace saelab

namespace saelab {
namespace {

TEST(Options, SectionStripsThePrefixAndKeepsThePathForMessages) {
  OptionSchema inner;
  inner.real("lr", 4e-4, "Learning rate").above(0);
  OptionSchema outer;
  outer.string("name", "", "Name");
  outer.add_section("train", inner);
  ASSERT_NE(outer.find("train.lr"), nullptr);
  EXPECT_EQ(outer.find("train.lr")->range_str(), "> 0");
  Options all = default_options(outer, "");
  Options train = all.section("train");
  EXPECT_DOUBLE_EQ(train.real("lr"), 4e-4);
  EXPECT_FALSE(train.has("name"));
  EXPECT_EQ(train.key_path("lr"), "train.lr");
}

}  // namespace
}  // namespace saelab
