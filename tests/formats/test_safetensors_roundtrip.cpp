// Round trips through saelab's own writer and reader, and the writer's byte layout.
#include <cstring>

#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/formats/safetensors.hpp"
#include "test_util.hpp"

namespace saelab::test {
namespace {
namespace st = saelab::safetensors;

// One process for all dtypes: every test executable pays libtorch's start-up cost once per TEST.
TEST(SafetensorsRoundTrip, EveryDtypeKeepsBitsShapeAndName) {
  const std::pair<torch::Dtype, const char*> cases[] = {{torch::kFloat64, "F64"}, {torch::kFloat32, "F32"},
                                                        {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
                                                        {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
                                                        {torch::kInt16, "I16"},   {torch::kInt8, "I8"},
                                                        {torch::kUInt8, "U8"},    {torch::kBool, "BOOL"}};
  TempDir dir;
  for (const auto& [dtype, dtype_name] : cases) {
    SCOPED_TRACE(dtype_name);
    st::TensorMap in = {
        {"matrix", pattern(dtype, {3, 5})},
        {"cube", pattern(dtype, {2, 3, 4})},
        {"scalar", pattern(dtype, {})},
        {"empty", pattern(dtype, {0, 4})},
    };
    const auto file = dir / (std::string(dtype_name) + ".safetensors");
    st::save(file, in, {{"format", "pt"}});
    st::File out = st::load(file);
    ASSERT_EQ(out.tensors.size(), in.size());
    for (const auto& [name, t] : in) {
      ASSERT_TRUE(out.tensors.count(name)) << name;
      EXPECT_TRUE(bitwise_equal(out.tensors.at(name), t)) << name;
    }
    for (const auto& e : out.entries) EXPECT_EQ(e.dtype, dtype_name);
    EXPECT_EQ(out.metadata, (st::Metadata{{"format", "pt"}}));
    // Loaded tensors own their memory: nothing points into a shared buffer.
    const auto& m = out.tensors.at("matrix");
    EXPECT_EQ(m.storage().nbytes(), static_cast<std::size_t>(m.numel() * m.element_size()));
  }
}

TEST(SafetensorsWriter, MixedDtypesSpecialValuesAndLayout) {
  TempDir dir;
  st::TensorMap in;
  for (auto d : {torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kInt64,
                 torch::kInt32, torch::kInt16, torch::kInt8, torch::kUInt8, torch::kBool})
    in[std::string("t_") + c10::toString(d)] = pattern(d, {7});
  in["special"] = special_f32();
  const auto file = dir / "mixed.safetensors";
  st::save(file, in);
  st::File out = st::load(file);
  for (const auto& [name, t] : in) EXPECT_TRUE(bitwise_equal(out.tensors.at(name), t)) << name;

  // Header length and the data start are multiples of 8, padded with spaces; data is ordered widest
  // dtype first, so every tensor is aligned to its element size.
  const std::string bytes = read_bytes(file);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.find("__metadata__"), std::string::npos);  // omitted when empty
  const auto last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(n - last - 1, 8u);  // at most 7 spaces of padding
  for (const auto& e : out.entries) EXPECT_EQ(e.begin % out.tensors.at(e.name).element_size(), 0u) << e.name;
  EXPECT_EQ(out.entries.front().dtype, "I64");
  EXPECT_EQ(out.entries.back().dtype, "BOOL");
}

TEST(SafetensorsWriter, AcceptsNonContiguousAndGradTensors) {
  TempDir dir;
  torch::Tensor base = pattern(torch::kFloat32, {4, 6});
  torch::Tensor w = base.clone().requires_grad_(true);
  st::save(dir / "a.safetensors", {{"t", base.t()}, {"w", w}});
  st::File out = st::load(dir / "a.safetensors");
  EXPECT_TRUE(bitwise_equal(out.tensors.at("t"), base.t().contiguous()));
  EXPECT_TRUE(bitwise_equal(out.tensors.at("w"), base));
  EXPECT_EQ(out.entries.size(), 2u);
}

TEST(SafetensorsWriter, ReplacesAtomicallyAndLeavesNoTempFiles) {
  TempDir dir;
  const auto file = dir / "x.safetensors";
  st::save(file, {{"a", pattern(torch::kFloat32, {3})}});
  st::save(file, {{"b", pattern(torch::kInt64, {2})}});
  st::File out = st::load(file);
  EXPECT_EQ(out.tensors.count("a"), 0u);
  EXPECT_TRUE(bitwise_equal(out.tensors.at("b"), pattern(torch::kInt64, {2})));
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) (void)e, ++files;
  EXPECT_EQ(files, 1);
}

TEST(SafetensorsWriter, RejectsReservedNameAndUnsupportedDtype) {
  TempDir dir;
  expect_error<Error>(
      [&] {
        st::save(dir / "a.safetensors", {{"__metadata__", torch::zeros({1})}});
      },
      {"'__metadata__' is reserved"});
  expect_error<Error>(
      [&] {
        st::save(dir / "a.safetensors", {{"c", torch::zeros({1}, torch::kComplexFloat)}});
      },
      {"cannot be saved", "supported: F64"});
  EXPECT_FALSE(std::filesystem::exists(dir / "a.safetensors"));
}

TEST(SafetensorsReader, HeaderOnlyReadsNoData) {
  TempDir dir;
  const auto file = dir / "h.safetensors";
  st::save(file, {{"w", pattern(torch::kFloat16, {2, 3})}}, {{"k", "v"}});
  st::File h = st::load_header(file);
  EXPECT_TRUE(h.tensors.empty());
  ASSERT_EQ(h.entries.size(), 1u);
  EXPECT_EQ(h.entries[0].name, "w");
  EXPECT_EQ(h.entries[0].dtype, "F16");
  EXPECT_EQ(h.entries[0].shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(h.entries[0].end - h.entries[0].begin, 12u);
  EXPECT_EQ(h.metadata.at("k"), "v");
}

TEST(SafetensorsReader, AcceptsUnpaddedHeaderAndZeroSizedTensorsAtTheSameOffset) {
  // Other writers need not pad; empty tensors may share an offset with their neighbours.
  TempDir dir;
  const auto file = dir / "u.safetensors";
  const std::string header =
      "{\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
      "\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
      "\"e2\":{\"dtype\":\"I64\",\"shape\":[2,0],\"data_offsets\":[3,3]}}";
  write_bytes(file, craft(header, "xyz"));
  st::File f = st::load(file);
  EXPECT_EQ(f.tensors.at("a").numel(), 3);
  EXPECT_EQ(f.tensors.at("a")[2].item<std::uint8_t>(), 'z');
  EXPECT_EQ(f.tensors.at("e2").sizes(), (std::vector<std::int64_t>{2, 0}));
  ASSERT_EQ(f.entries.size(), 3u);
  EXPECT_EQ(f.entries[0].name, "e1");  // file order preserved
  EXPECT_EQ(f.entries[2].name, "e2");
}

}  // namespace
}  // namespace saelab::test
