// GGUF files built byte by byte in C++ (no Python needed): a valid baseline, then one test per way
// a file can be malformed. Each error must name the file and say what is wrong (and, where there
// is one, the key or tensor).
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/formats/gguf.hpp"
#include "test_util.hpp"

namespace saelab::test {
namespace {
namespace gg = saelab::gguf;

// Little-endian encoders for the pieces of a GGUF file.
std::string le(std::uint64_t v, int bytes) {
  std::string s(static_cast<std::size_t>(bytes), '\0');
  for (int i = 0; i < bytes; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}
std::string u8(std::uint8_t v) {
  return le(v, 1);
}
std::string u32(std::uint32_t v) {
  return le(v, 4);
}
std::string u64(std::uint64_t v) {
  return le(v, 8);
}
std::string i32(std::int32_t v) {
  return le(static_cast<std::uint32_t>(v), 4);
}
std::string f32(float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return u32(bits);
}
std::string str(const std::string& s) {
  return u64(s.size()) + s;
}

// GGUF value type ids (gguf.h).
enum : std::uint32_t { kU8 = 0, kI8 = 1, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9 };
// ggml type ids.
enum : std::uint32_t { kTF32 = 0, kTQ4_1 = 3, kTQ8_0 = 8, kTQ2_K = 10 };

struct Kv {
  std::string key;
  std::uint32_t type;
  std::string value;  // encoded value bytes
};

struct Ti {
  std::string name;
  std::vector<std::uint64_t> dims;
  std::uint32_t type;
  std::uint64_t offset;  // relative to the data section
};

// Everything a test may want to break. build() lays it out exactly as a writer would.
struct Spec {
  std::string magic = "GGUF";
  std::uint32_t version = 3;
  std::optional<std::uint64_t> n_tensors, n_kv;  // override the true counts
  std::vector<Kv> kvs;
  std::vector<Ti> tensors;
  std::uint64_t pad_to = 32;  // padding before the data section
  std::string data;
};

std::string build(const Spec& s) {
  std::string out = s.magic + u32(s.version) + u64(s.n_tensors.value_or(s.tensors.size())) +
                    u64(s.n_kv.value_or(s.kvs.size()));
  for (const Kv& kv : s.kvs) out += str(kv.key) + u32(kv.type) + kv.value;
  for (const Ti& t : s.tensors) {
    out += str(t.name) + u32(static_cast<std::uint32_t>(t.dims.size()));
    for (std::uint64_t d : t.dims) out += u64(d);
    out += u32(t.type) + u64(t.offset);
  }
  if (s.pad_to > 1) out.append((s.pad_to - out.size() % s.pad_to) % s.pad_to, '\0');
  return out + s.data;
}

std::string f32_data(int n, float start = 0) {
  std::string s;
  for (int i = 0; i < n; ++i) s += f32(start + static_cast<float>(i));
  return s;
}

// One Q8_0 block: d = 0.5 (f16 0x3800), q_i = i - 16, so x_i = (i - 16) / 2.
std::string q8_0_block() {
  std::string s = le(0x3800, 2);
  for (int i = 0; i < 32; ++i) s += static_cast<char>(static_cast<std::int8_t>(i - 16));
  return s;
}

// Two tensors: "small" F32 ggml [3, 2] at 0 (24 bytes) and "q" Q8_0 [32] at 32 (34 bytes).
Spec baseline() {
  Spec s;
  s.kvs = {{"general.architecture", kString, str("test")}, {"test.count", kU32, u32(7)}};
  s.tensors = {{"small", {3, 2}, kTF32, 0}, {"q", {32}, kTQ8_0, 32}};
  s.data = f32_data(6) + std::string(8, '\0') + q8_0_block();
  return s;
}

class GgufMalformed : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& bytes) {
    const auto file = dir_ / "test.gguf";
    write_bytes(file, bytes);
    return file;
  }
  // Opening the file must fail with every needle and the file's path in the message.
  void expect_bad(const std::string& bytes, std::vector<std::string> needles) {
    const auto file = write(bytes);
    needles.push_back("gguf: '" + file.string() + "'");
    try {
      gg::File f(file);
      ADD_FAILURE() << "no error; expected one containing \"" << needles.front() << "\"";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      std::cout << "  error: " << msg << "\n";
      for (const auto& n : needles)
        EXPECT_NE(msg.find(n), std::string::npos) << "message lacks \"" << n << "\":\n  " << msg;
    }
  }
  void expect_bad(const Spec& s, std::vector<std::string> needles) {
    expect_bad(build(s), std::move(needles));
  }
  TempDir dir_;
};

TEST_F(GgufMalformed, BaselineParsesAndReverseShapes) {
  gg::File f(write(build(baseline())));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_string("general.architecture"), "test");
  EXPECT_EQ(f.get_u32("test.count"), 7u);
  ASSERT_EQ(f.tensors().size(), 2u);
  const gg::TensorInfo& small = f.tensor("small");
  EXPECT_EQ(small.dims, (std::vector<std::uint64_t>{3, 2}));
  EXPECT_EQ(small.n_elements, 6u);
  EXPECT_EQ(small.n_bytes, 24u);
  EXPECT_EQ(small.offset, f.data_offset());
  EXPECT_EQ(f.data_offset() % 32, 0u);
  // ggml [3, 2] (inner dimension 3 first) is torch [2, 3]; element order is the file's.
  torch::Tensor t = gg::load_f32(f, "small");
  EXPECT_EQ(t.sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_TRUE(t.equal(torch::arange(6, torch::kFloat32).reshape({2, 3})));
  EXPECT_EQ(t[1][0].item<float>(), 3.0f);
  torch::Tensor q = gg::load_f32(f, "q");
  EXPECT_EQ(q.sizes(), (std::vector<std::int64_t>{32}));
  EXPECT_TRUE(q.equal((torch::arange(32, torch::kFloat32) - 16) * 0.5));
}

TEST_F(GgufMalformed, VersionTwoIsAccepted) {
  Spec s = baseline();
  s.version = 2;
  EXPECT_EQ(gg::File(write(build(s))).version(), 2u);
}

TEST_F(GgufMalformed, TruncatedHeader) {
  const std::string good = build(baseline());
  expect_bad(good.substr(0, 3), {"truncated", "3 bytes", "magic"});
  expect_bad(good.substr(0, 20), {"truncated", "kv count", "at offset 16 needs 8 bytes"});
  // Without tensors, so that the count checks (which a cut also trips) pass and the reads fail.
  Spec kv_only = baseline();
  kv_only.tensors.clear();
  kv_only.data.clear();
  const std::string kvs = build(kv_only);
  expect_bad(kvs.substr(0, 50), {"metadata kv pair 0", "the key at offset 24 claims 20 bytes", "truncated"});
  expect_bad(kvs.substr(0, 60), {"key 'general.architecture'", "truncated", "a string value at offset 56"});
  expect_bad(good.substr(0, 130), {"truncated", "tensor 'small'", "the ggml type at offset 127"});
  expect_bad(good.substr(0, 60), {"claims 2 tensors", "truncated or corrupt"});
}

TEST_F(GgufMalformed, BadMagic) {
  Spec s = baseline();
  s.magic = "GGML";
  expect_bad(s, {"bad magic", "47 47 4d 4c", "\"GGUF\""});
}

TEST_F(GgufMalformed, UnsupportedVersion) {
  Spec s = baseline();
  s.version = 1;
  expect_bad(s, {"GGUF version 1 is not supported", "versions 2 and 3"});
  s.version = 4;
  expect_bad(s, {"GGUF version 4 is not supported", "versions 2 and 3"});
  s.version = 0x03000000;  // a big-endian v3 file read as little-endian
  expect_bad(s, {"is not supported", "big-endian"});
}

TEST_F(GgufMalformed, HugeTensorCount) {
  Spec s = baseline();
  s.n_tensors = std::uint64_t{1} << 60;
  expect_bad(s, {"claims 1152921504606846976 tensors", "at most"});
}

TEST_F(GgufMalformed, HugeKvCount) {
  Spec s = baseline();
  s.n_kv = ~std::uint64_t{0};
  expect_bad(s, {"claims 18446744073709551615 metadata kv pairs", "at most"});
}

TEST_F(GgufMalformed, StringLongerThanFile) {
  Spec s = baseline();
  s.kvs.push_back({"test.long", kString, u64(std::uint64_t{1} << 40) + "abc"});
  expect_bad(s, {"key 'test.long'", "claims 1099511627776 bytes", "remain in the file"});
  // The same for a key itself: nothing to name but its position.
  expect_bad("GGUF" + u32(3) + u64(0) + u64(1) + u64(~std::uint64_t{0}) + std::string(40, 'x'),
             {"metadata kv pair 0", "the key", "claims 18446744073709551615 bytes"});
}

TEST_F(GgufMalformed, ArrayCountLargerThanFile) {
  Spec s = baseline();
  s.kvs.push_back({"test.ints", kArray, u32(kU32) + u64(std::uint64_t{1} << 40) + u32(1)});
  expect_bad(s, {"key 'test.ints'", "an array of 1099511627776 u32", "remain in the file"});
  s = baseline();
  s.kvs.push_back({"test.strs", kArray, u32(kString) + u64(~std::uint64_t{0} / 2)});
  expect_bad(s, {"key 'test.strs'", "array of 9223372036854775807 string"});
}

TEST_F(GgufMalformed, ArraysNestedTooDeep) {
  std::string value;
  for (int i = 0; i < 9; ++i) value += u32(kArray) + u64(1);
  value += u32(kU8) + u64(1) + u8(5);
  Spec s = baseline();
  s.kvs.push_back({"test.deep", kArray, value});
  expect_bad(s, {"key 'test.deep'", "nest deeper than 8"});
}

TEST_F(GgufMalformed, UnknownValueTypeAndBadBool) {
  Spec s = baseline();
  s.kvs.push_back({"test.what", 13, u32(0)});
  expect_bad(s, {"key 'test.what'", "is 13, which is not a GGUF value type"});
  s = baseline();
  s.kvs.push_back({"test.flag", kBool, u8(2)});
  expect_bad(s, {"key 'test.flag'", "bools must be 0 or 1"});
}

TEST_F(GgufMalformed, DuplicateKey) {
  Spec s = baseline();
  s.kvs.push_back({"test.count", kU32, u32(8)});
  expect_bad(s, {"key 'test.count'", "appears twice"});
}

TEST_F(GgufMalformed, AlignmentMustBeU32PowerOfTwo) {
  Spec s = baseline();
  s.kvs.push_back({"general.alignment", kI32, i32(32)});
  expect_bad(s, {"key 'general.alignment'", "i32 32", "must be a u32"});
  s.kvs.back() = {"general.alignment", kU32, u32(48)};
  expect_bad(s, {"key 'general.alignment'", "48", "nonzero power of two"});
  s.kvs.back() = {"general.alignment", kU32, u32(0)};
  expect_bad(s, {"key 'general.alignment'", "nonzero power of two"});
}

TEST_F(GgufMalformed, MisalignedTensorOffset) {
  Spec s = baseline();
  s.tensors[1].offset = 24;  // right after "small", but not a multiple of 32
  expect_bad(s, {"tensor 'q'", "offset 24 is not a multiple of the alignment 32"});
  // general.alignment is honoured: 32 is not a multiple of 64.
  s = baseline();
  s.kvs.push_back({"general.alignment", kU32, u32(64)});
  s.pad_to = 64;
  expect_bad(s, {"tensor 'q'", "offset 32 is not a multiple of the alignment 64"});
}

TEST_F(GgufMalformed, OverlappingTensors) {
  Spec s = baseline();
  s.tensors = {{"a", {16}, kTF32, 0}, {"b", {8}, kTF32, 32}};  // a covers [0, 64)
  s.data = f32_data(16);
  expect_bad(s, {"tensor 'b'", "overlaps tensor 'a'", "must not share bytes"});
}

TEST_F(GgufMalformed, TensorPastEndOfFile) {
  Spec s = baseline();
  s.tensors[1].offset = 64;  // 34 bytes at 64 of a 66-byte data section
  expect_bad(s, {"tensor 'q'", "run past the end of the file", "holds 66 bytes"});
  s = baseline();
  s.data.resize(s.data.size() - 1);  // truncated data section
  expect_bad(s, {"tensor 'q'", "run past the end of the file", "truncated"});
}

TEST_F(GgufMalformed, UnknownTypeIdNamesTheTensor) {
  Spec s = baseline();
  s.tensors[1].type = 4;  // Q4_2, removed from ggml
  expect_bad(s, {"tensor 'q'", "ggml type id 4 is not a known ggml type"});
  s.tensors[1].type = 1000;
  expect_bad(s, {"tensor 'q'", "ggml type id 1000"});
}

TEST_F(GgufMalformed, InnerDimensionNotMultipleOfBlock) {
  Spec s = baseline();
  s.tensors[1] = {"blk.0.attn_q.weight", {48, 2}, kTQ4_1, 32};
  expect_bad(
      s, {"tensor 'blk.0.attn_q.weight'", "inner dimension 48 is not a multiple of Q4_1's block size 32"});
  // The element count would be a multiple of 32 here; the rows must still be whole blocks.
  s.tensors[1].dims = {16, 2};
  expect_bad(s, {"inner dimension 16 is not a multiple"});
}

TEST_F(GgufMalformed, BadDims) {
  Spec s = baseline();
  s.tensors[0].dims = {3, 0};
  expect_bad(s, {"tensor 'small'", "dimension 1 is 0"});
  s.tensors[0].dims = {1, 1, 1, 1, 6};
  expect_bad(s, {"tensor 'small'", "n_dims is 5", "1 to 4"});
  s.tensors[0].dims = {};
  expect_bad(s, {"tensor 'small'", "n_dims is 0"});
  s.tensors[0].dims = {std::uint64_t{1} << 32, std::uint64_t{1} << 32};
  expect_bad(s, {"tensor 'small'", "more elements than fit in 63 bits"});
  s.tensors[0].dims = {std::uint64_t{1} << 62};
  expect_bad(s, {"tensor 'small'", "need more than 2^63 bytes"});
}

TEST_F(GgufMalformed, DuplicateTensorName) {
  Spec s = baseline();
  s.tensors[1].name = "small";
  expect_bad(s, {"tensor 'small'", "appears twice"});
}

TEST_F(GgufMalformed, KnownButUnsupportedTypeParsesButDoesNotDequantize) {
  Spec s = baseline();
  s.tensors[1] = {"blk.3.ffn_down.weight", {256}, kTQ2_K, 32};  // one 84-byte Q2_K block
  s.data = f32_data(6) + std::string(8, '\0') + std::string(84, '\x11');
  gg::File f(write(build(s)));
  const gg::TensorInfo& t = f.tensor("blk.3.ffn_down.weight");
  EXPECT_EQ(t.type, gg::GgmlType::Q2_K);
  EXPECT_EQ(t.n_bytes, 84u);
  EXPECT_FALSE(gg::can_dequantize(t.type));
  std::vector<float> out(256);
  for (const auto& fn : {std::function<void()>([&] { gg::dequantize(f, t, out.data()); }),
                         std::function<void()>([&] { gg::load_f32(f, t.name); })})
    expect_error<FormatError>(fn, {f.path().string(), "tensor 'blk.3.ffn_down.weight'", "type Q2_K",
                                   "cannot dequantize", "supported types: F32, F16, BF16, Q8_0"});
}

TEST_F(GgufMalformed, MissingTensorAndKeys) {
  gg::File f(write(build(baseline())));
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  expect_error<FormatError>([&] { f.tensor("output.weight"); },
                            {f.path().string(), "tensor 'output.weight' is missing", "2 tensors", "'small'"});
  expect_error<FormatError>([&] { gg::load_f32(f, "output.weight"); }, {"tensor 'output.weight' is missing"});
  EXPECT_EQ(f.find("llama.block_count"), nullptr);
  expect_error<FormatError>([&] { f.get_u32("llama.block_count"); },
                            {f.path().string(), "key 'llama.block_count' is missing"});
  expect_error<FormatError>([&] { f.get_u32("general.architecture"); },
                            {"key 'general.architecture' is string 'test'", "fits in u32"});
  expect_error<FormatError>([&] { f.get_string("test.count"); }, {"key 'test.count' is u32 7", "a string"});
  expect_error<FormatError>([&] { f.get_f32("test.count"); }, {"key 'test.count'", "f32"});
  expect_error<FormatError>([&] { f.get_string_array("test.count"); }, {"key 'test.count'", "array"});
}

TEST_F(GgufMalformed, IntegerGettersCheckRanges) {
  Spec s = baseline();
  s.kvs.push_back({"test.neg", kI32, i32(-1)});
  s.kvs.push_back({"test.small", kI8, u8(5)});
  s.kvs.push_back({"test.ints", kArray, u32(kI32) + u64(3) + i32(1) + i32(-2) + i32(3)});
  s.kvs.push_back({"test.bytes", kArray, u32(kU8) + u64(2) + u8(200) + u8(7)});
  gg::File f(write(build(s)));
  EXPECT_EQ(f.get_u32("test.small"), 5u);  // any integer type that fits
  EXPECT_EQ(f.get_i64("test.neg"), -1);
  expect_error<FormatError>([&] { f.get_u32("test.neg"); }, {"key 'test.neg' is i32 -1", "fits in u32"});
  EXPECT_EQ(f.get_i32_array("test.ints"), (std::vector<std::int32_t>{1, -2, 3}));
  EXPECT_EQ(f.get_i32_array("test.bytes"), (std::vector<std::int32_t>{200, 7}));
}

// Every prefix of a valid file and every single-byte corruption of it either parses (and then
// dequantizes) or is a FormatError: never another exception, a crash or, under the sanitizers, a
// bad read.
TEST_F(GgufMalformed, EveryTruncationAndByteFlipIsHandled) {
  Spec s = baseline();
  s.kvs.push_back({"test.ints", kArray, u32(kI32) + u64(2) + i32(1) + i32(2)});
  s.kvs.push_back({"test.strs", kArray, u32(kString) + u64(2) + str("ab") + str("")});
  const std::string good = build(s);
  int parsed = 0, refused = 0;
  auto attempt = [&](const std::string& bytes) {
    try {
      gg::File f(write(bytes));
      for (const gg::TensorInfo& t : f.tensors())
        if (gg::can_dequantize(t.type)) gg::load_f32(f, t.name);
      ++parsed;
    } catch (const FormatError&) {
      ++refused;
    }
  };
  for (std::size_t n = 0; n < good.size(); ++n) attempt(good.substr(0, n));
  EXPECT_EQ(parsed, 0) << "a truncated file parsed";
  for (std::size_t i = 0; i < good.size(); ++i)
    for (unsigned char mask : {0x01, 0x80, 0xFF}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      attempt(bad);
    }
  std::cout << "  " << good.size() << " truncations and " << 3 * good.size() << " byte flips: " << parsed
            << " parsed, " << refused << " refused\n";
}

TEST_F(GgufMalformed, NotAFile) {
  expect_error<Error>([&] { gg::File f(dir_ / "absent.gguf"); }, {"absent.gguf", "cannot open"});
  expect_error<FormatError>([&] { gg::File f(dir_.path()); }, {"not a regular file"});
}

}  // namespace
}  // namespace saelab::test
