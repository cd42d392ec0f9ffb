// saelab's safetensors against the Python reference implementation (safetensors 0.4.1), both ways.
#include <gtest/gtest.h>

#include "saelab/formats/safetensors.hpp"
#include "test_util.hpp"

namespace saelab::test {
namespace {
namespace st = saelab::safetensors;

// Mirrors SPEC in oracle_safetensors.py.
st::TensorMap spec_tensors() {
  st::TensorMap m = {
      {"f64", pattern(torch::kFloat64, {3, 5})}, {"f32", pattern(torch::kFloat32, {4, 6})},
      {"f16", pattern(torch::kFloat16, {7})},    {"bf16", pattern(torch::kBFloat16, {2, 3, 4})},
      {"i64", pattern(torch::kInt64, {5})},      {"i32", pattern(torch::kInt32, {3, 3})},
      {"i16", pattern(torch::kInt16, {6})},      {"i8", pattern(torch::kInt8, {10})},
      {"u8", pattern(torch::kUInt8, {9})},       {"bool", pattern(torch::kBool, {11})},
      {"scalar", pattern(torch::kFloat32, {})},  {"empty", pattern(torch::kFloat32, {0, 4})},
  };
  m["special"] = special_f32();
  return m;
}

TEST(SafetensorsOracle, PythonReadsWhatSaelabWrites) {
  SAELAB_REQUIRE_ORACLE(py);
  TempDir dir;
  const auto file = dir / "saelab.safetensors";
  st::save(file, spec_tensors(), {{"format", "pt"}, {"note", "saelab \xc3\xa9\n\"quoted\""}});
  auto r = run_oracle(py, "oracle_safetensors.py", {"check", file.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(SafetensorsOracle, SaelabWritesTheSameBytesAsPython) {
  SAELAB_REQUIRE_ORACLE(py);
  TempDir dir;
  const auto file = dir / "saelab.safetensors";
  st::save(file, spec_tensors(), {{"format", "pt"}});
  auto r = run_oracle(py, "oracle_safetensors.py", {"identical", file.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(SafetensorsOracle, SaelabReadsWhatPythonWrites) {
  SAELAB_REQUIRE_ORACLE(py);
  TempDir dir;
  const auto file = dir / "python.safetensors";
  auto r = run_oracle(py, "oracle_safetensors.py", {"write", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  st::File f = st::load(file);
  st::TensorMap want = {{"w_f32", pattern(torch::kFloat32, {4, 6})},
                        {"w_f16", pattern(torch::kFloat16, {7})},
                        {"w_bf16", pattern(torch::kBFloat16, {2, 3, 4})},
                        {"special", special_f32()}};
  ASSERT_EQ(f.tensors.size(), want.size());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(f.tensors.count(name)) << name;
    const auto& got = f.tensors.at(name);
    EXPECT_TRUE(bitwise_equal(got, t)) << name;
    auto finite = torch::isfinite(t.to(torch::kFloat64));
    double diff = got.sizes() == t.sizes() ? (torch::masked_select(got.to(torch::kFloat64), finite) -
                                              torch::masked_select(t.to(torch::kFloat64), finite))
                                                 .abs()
                                                 .max()
                                                 .item<double>()
                                           : -1;
    std::cout << name << ": " << st::dtype_to_string(got.scalar_type()) << " " << got.sizes()
              << " max_abs_diff=" << diff << "\n";
  }
  EXPECT_EQ(f.metadata, (st::Metadata{{"format", "pt"}, {"source", "python"}}));
}

}  // namespace
}  // namespace saelab::test
