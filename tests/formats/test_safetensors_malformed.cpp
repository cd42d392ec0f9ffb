// One test per way a safetensors file can be malformed. Each crafts the bytes by hand and checks
// that the error names the file, the tensor (when there is one) and what is allowed.
#include <string>

#include <gtest/gtest.h>

#include "saelab/core/error.hpp"
#include "saelab/formats/safetensors.hpp"
#include "test_util.hpp"

namespace saelab::test {
namespace {
namespace st = saelab::safetensors;

class Malformed : public ::testing::Test {
 protected:
  // Writes header + data to a file and expects load (and, when the data is not needed to find the
  // problem, load_header) to fail with every needle plus the file path in the message.
  void expect_bad(const std::string& header, const std::string& data,
                  std::initializer_list<std::string> needles, bool header_only_detects = true,
                  std::optional<std::uint64_t> length = std::nullopt) {
    const auto file = dir_ / "bad.safetensors";
    write_bytes(file, craft(header, data, length));
    std::vector<std::string> all(needles);
    all.push_back(file.string());
    auto check = [&](const std::function<void()>& fn) {
      try {
        fn();
        ADD_FAILURE() << "no error for header " << header.substr(0, 200);
      } catch (const FormatError& e) {
        std::string msg = e.what();
        std::cout << "  error: " << msg << "\n";
        for (const auto& n : all)
          EXPECT_NE(msg.find(n), std::string::npos) << "message lacks \"" << n << "\":\n  " << msg;
      }
    };
    check([&] { st::load(file); });
    if (header_only_detects) check([&] { st::load_header(file); });
  }
  static std::string f32_entry(const std::string& name, const std::string& shape,
                               const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
  }
  TempDir dir_;
};

const std::string kAllowedDtypes = "allowed: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL";

TEST_F(Malformed, FileShorterThanLengthField) {
  const auto file = dir_ / "short.safetensors";
  write_bytes(file, "abc");
  expect_error<FormatError>([&] { st::load(file); }, {file.string(), "3 bytes", "8-byte header length"});
}

TEST_F(Malformed, HeaderLengthOverCap) {
  expect_bad("{}", "", {"header length is 100000001", "at most 100000000 bytes"}, true, 100000001);
}

TEST_F(Malformed, HeaderLengthBeyondFileSize) {
  expect_bad("{}", std::string(20, ' '), {"header length is 1000", "only 22 bytes follow", "truncated"}, true,
             1000);
}

TEST_F(Malformed, InvalidJson) {
  expect_bad("{\"a\":{\"dtype\":", "", {"not valid JSON", "one UTF-8 JSON object"});
}

TEST_F(Malformed, InvalidUtf8InName) {
  expect_bad("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", "",
             {"not valid JSON", "UTF-8"});
}

TEST_F(Malformed, NonObjectHeader) {
  expect_bad("[1, 2, 3]", "", {"does not start with '{'", "must be a JSON object"});
}

TEST_F(Malformed, EntryIsNotAnObject) {
  expect_bad("{\"a\":[1,2]}", "",
             {"tensor 'a'", "it must be an object {\"dtype\", \"shape\", \"data_offsets\"}"});
}

TEST_F(Malformed, DuplicateTensorName) {
  expect_bad("{" + f32_entry("w", "[1]", "[0,4]") + "," + f32_entry("w", "[1]", "[4,8]") + "}",
             std::string(8, '\0'), {"tensor 'w'", "appears twice", "must be unique"});
}

TEST_F(Malformed, DuplicateKeyInsideEntry) {
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             std::string(4, '\0'), {"tensor 'w'", "key 'dtype' appears twice", "must be unique"});
}

TEST_F(Malformed, UnknownDtype) {
  expect_bad("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", std::string(4, '\0'),
             {"tensor 'w'", "dtype 'F8_E4M3' is not supported", kAllowedDtypes});
}

TEST_F(Malformed, DtypeNotAString) {
  expect_bad("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", std::string(4, '\0'),
             {"tensor 'w'", "'dtype' is a number", kAllowedDtypes});
}

TEST_F(Malformed, MissingKeyInEntry) {
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", std::string(4, '\0'),
             {"tensor 'w'", "missing key 'shape'", "dtype, shape and data_offsets"});
}

TEST_F(Malformed, UnknownKeyInEntry) {
  expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"stride\":[1]}}",
             std::string(4, '\0'),
             {"tensor 'w'", "unknown key 'stride'", "allowed keys: dtype, shape, data_offsets"});
}

TEST_F(Malformed, OverlappingOffsets) {
  expect_bad("{" + f32_entry("a", "[2]", "[0,8]") + "," + f32_entry("b", "[2]", "[4,12]") + "}",
             std::string(12, '\0'), {"tensor 'b'", "overlap tensor 'a'", "must not overlap"});
}

TEST_F(Malformed, GapBetweenTensors) {
  expect_bad("{" + f32_entry("a", "[2]", "[0,8]") + "," + f32_entry("b", "[2]", "[12,20]") + "}",
             std::string(20, '\0'), {"tensor 'b'", "gap of 4 bytes", "tensor 'a'", "no gaps"});
}

TEST_F(Malformed, GapAtStart) {
  expect_bad("{" + f32_entry("a", "[1]", "[4,8]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "gap of 4 bytes", "start of the data section"});
}

TEST_F(Malformed, OffsetsOutOfBounds) {
  expect_bad("{" + f32_entry("a", "[4]", "[0,16]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "out of bounds", "holds 8 bytes", "must lie within it"});
}

TEST_F(Malformed, OffsetsReversed) {
  expect_bad("{" + f32_entry("a", "[2]", "[8,0]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "[8, 0] run backwards", "begin must be <= end"});
}

TEST_F(Malformed, OffsetsNotAPair) {
  expect_bad("{" + f32_entry("a", "[2]", "[0,8,16]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "'data_offsets' is", "[begin, end]"});
}

TEST_F(Malformed, ByteCountDoesNotMatchShape) {
  expect_bad(
      "{" + f32_entry("a", "[3]", "[0,8]") + "}", std::string(8, '\0'),
      {"tensor 'a'", "hold 8 bytes", "shape [3] of F32 (4 bytes each) needs 12 bytes", "must match exactly"});
}

TEST_F(Malformed, ShapeElementCountOverflows) {
  expect_bad("{" + f32_entry("a", "[4294967296,4294967296]", "[0,8]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "more elements than fit in 63 bits", "must equal the data_offsets length"});
}

TEST_F(Malformed, ShapeByteCountOverflows) {
  expect_bad("{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}",
             std::string(8, '\0'), {"tensor 'a'", "needs more than 2^63 bytes", "F64"});
}

TEST_F(Malformed, NegativeDimension) {
  expect_bad("{" + f32_entry("a", "[-2,-1]", "[0,8]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "dimension 0 is the negative number -2", "integers >= 0"});
}

TEST_F(Malformed, HugeDimension) {
  expect_bad("{" + f32_entry("a", "[1e30]", "[0,8]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "dimension 0 is the number 1e+30", "integers >= 0"});
  expect_bad("{" + f32_entry("a", "[18446744073709551616]", "[0,8]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "dimension 0 is the number", "integers >= 0"});
  expect_bad("{" + f32_entry("a", "[9223372036854775808]", "[0,8]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "9223372036854775808", "below 2^63"});
}

TEST_F(Malformed, FractionalDimension) {
  expect_bad("{" + f32_entry("a", "[2.5]", "[0,8]") + "}", std::string(8, '\0'),
             {"tensor 'a'", "dimension 0 is the number 2.5", "integers >= 0"});
}

TEST_F(Malformed, TooManyDimensions) {
  expect_bad("{" + f32_entry("a", "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]", "[0,4]") + "}", std::string(4, '\0'),
             {"tensor 'a'", "17 dimensions", "at most 16"});
}

TEST_F(Malformed, DeepNesting) {
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[[[1]]],\"data_offsets\":[0,4]}}", std::string(4, '\0'),
             {"nests JSON deeper than 3 levels"});
}

TEST_F(Malformed, TrailingBytes) {
  expect_bad("{" + f32_entry("a", "[2]", "[0,8]") + "}", std::string(12, '\0'),
             {"4 trailing bytes", "tensor 'a'", "must cover it exactly"});
}

TEST_F(Malformed, TrailingBytesWithoutTensors) {
  expect_bad("{}", std::string(3, '\0'), {"3 trailing bytes", "empty header"});
}

TEST_F(Malformed, MetadataValueNotAString) {
  expect_bad("{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3}}", "",
             {"'__metadata__' key 'epoch' is", "number", "only string values are allowed"});
}

TEST_F(Malformed, MetadataNotAnObject) {
  expect_bad("{\"__metadata__\":\"pt\"}", "", {"'__metadata__' is", "object of string values"});
}

TEST_F(Malformed, BoolByteOutOfRange) {
  expect_bad("{\"flags\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}",
             std::string("\x01\x00\x02", 3), {"tensor 'flags'", "element 2", "byte 2", "allowed bytes: 0, 1"},
             /*header_only_detects=*/false);
}

TEST_F(Malformed, MissingFileIsAnError) {
  expect_error<Error>([&] { st::load(dir_ / "nope.safetensors"); },
                      {(dir_ / "nope.safetensors").string(), "No such file"});
}

TEST(SafetensorsDtype, StringConversions) {
  EXPECT_EQ(st::dtype_from_string("BF16", "here"), torch::kBFloat16);
  EXPECT_EQ(st::dtype_to_string(torch::kInt16), "I16");
  expect_error<FormatError>([] { st::dtype_from_string("F8_E5M2", "file 'x', tensor 'y'"); },
                            {"file 'x', tensor 'y'", "F8_E5M2", kAllowedDtypes});
  expect_error<Error>([] { st::dtype_to_string(torch::kComplexFloat); }, {"cannot be saved", "F64"});
}

}  // namespace
}  // namespace saelab::test
