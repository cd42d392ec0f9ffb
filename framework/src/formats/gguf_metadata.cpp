// Typed reads of GGUF metadata (File::get_u32 ... get_f32_array): each value's type and range are
// checked, and an error names the file, the key, the type found and what was expected.
#include "saelab/formats/gguf.hpp"

#include <limits>

#include "saelab/core/error.hpp"
#include "formats/gguf_value.hpp"

namespace saelab::gguf {
namespace fs = std::filesystem;
using namespace detail;

const Value& File::get(const std::string& key) const {
  const Value* v = find(key);
  SAELAB_CHECK(v, FormatError, file_where(path_), ": key '", key, "' is missing from the metadata (",
               kvs_.size(), " keys present)");
  return *v;
}

namespace {
// Integers of any GGUF type, checked to fit [lo, hi].
struct IntRange {
  std::int64_t lo;
  std::uint64_t hi;
  const char* name;
};

bool int_fits(ValueType type, std::uint64_t u, std::int64_t s, const IntRange& range) {
  if (is_unsigned(type)) return u <= range.hi;
  if (!is_signed(type)) return false;
  return s >= range.lo && (s < 0 || static_cast<std::uint64_t>(s) <= range.hi);
}

constexpr IntRange kU32{0, std::numeric_limits<std::uint32_t>::max(), "u32"};
constexpr IntRange kU64{0, std::numeric_limits<std::uint64_t>::max(), "u64"};
constexpr IntRange kI64{std::numeric_limits<std::int64_t>::min(),
                        static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), "i64"};
constexpr IntRange kI32{std::numeric_limits<std::int32_t>::min(),
                        static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()), "i32"};

// Element i of a numeric array, split into the unsigned/signed/real members a scalar Value uses.
Value array_element(const Value& a, std::uint64_t i) {
  Value e;
  e.type = a.elem_type;
  const std::uint8_t* p = a.raw.data() + i * fixed_size(a.elem_type);
  auto take = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (a.elem_type) {
    case ValueType::U8:
    case ValueType::BOOL:
      e.uint = take(std::uint8_t{});
      break;
    case ValueType::U16:
      e.uint = take(std::uint16_t{});
      break;
    case ValueType::U32:
      e.uint = take(std::uint32_t{});
      break;
    case ValueType::U64:
      e.uint = take(std::uint64_t{});
      break;
    case ValueType::I8:
      e.sint = sign_extend(take(std::uint8_t{}));
      break;
    case ValueType::I16:
      e.sint = take(std::int16_t{});
      break;
    case ValueType::I32:
      e.sint = take(std::int32_t{});
      break;
    case ValueType::I64:
      e.sint = take(std::int64_t{});
      break;
    case ValueType::F32:
      e.real = take(float{});
      break;
    case ValueType::F64:
      e.real = take(double{});
      break;
    default:
      break;
  }
  return e;
}
}  // namespace

namespace {
std::uint64_t checked_int(const fs::path& file, const std::string& key, const Value& v,
                          const IntRange& range) {
  SAELAB_CHECK(int_fits(v.type, v.uint, v.sint, range), FormatError, file_where(file), ": key '", key,
               "' is ", v.describe(), "; expected an integer that fits in ", range.name);
  return is_unsigned(v.type) ? v.uint : static_cast<std::uint64_t>(v.sint);
}

const Value& checked_array(const fs::path& file, const std::string& key, const Value& v, const char* what) {
  SAELAB_CHECK(v.type == ValueType::ARRAY, FormatError, file_where(file), ": key '", key, "' is ",
               v.describe(), "; expected an array of ", what);
  return v;
}
}  // namespace

std::uint32_t File::get_u32(const std::string& key) const {
  return static_cast<std::uint32_t>(checked_int(path_, key, get(key), kU32));
}
std::uint64_t File::get_u64(const std::string& key) const {
  return checked_int(path_, key, get(key), kU64);
}
std::int64_t File::get_i64(const std::string& key) const {
  return static_cast<std::int64_t>(checked_int(path_, key, get(key), kI64));
}

float File::get_f32(const std::string& key) const {
  const Value& v = get(key);
  SAELAB_CHECK(v.type == ValueType::F32 || v.type == ValueType::F64, FormatError, file_where(path_),
               ": key '", key, "' is ", v.describe(), "; expected an f32 (or f64)");
  return static_cast<float>(v.real);
}

bool File::get_bool(const std::string& key) const {
  const Value& v = get(key);
  SAELAB_CHECK(v.type == ValueType::BOOL, FormatError, file_where(path_), ": key '", key, "' is ",
               v.describe(), "; expected a bool");
  return v.uint != 0;
}

std::string File::get_string(const std::string& key) const {
  const Value& v = get(key);
  SAELAB_CHECK(v.type == ValueType::STRING, FormatError, file_where(path_), ": key '", key, "' is ",
               v.describe(), "; expected a string");
  return v.string;
}

std::vector<std::string> File::get_string_array(const std::string& key) const {
  const Value& v = checked_array(path_, key, get(key), "strings");
  SAELAB_CHECK(v.elem_type == ValueType::STRING, FormatError, file_where(path_), ": key '", key, "' is ",
               v.describe(), "; expected an array of strings");
  return v.strings;
}

std::vector<std::int32_t> File::get_i32_array(const std::string& key) const {
  const Value& v = checked_array(path_, key, get(key), "integers");
  SAELAB_CHECK(is_unsigned(v.elem_type) || is_signed(v.elem_type), FormatError, file_where(path_), ": key '",
               key, "' is ", v.describe(), "; expected an array of integers");
  std::vector<std::int32_t> out(v.count);
  for (std::uint64_t i = 0; i < v.count; ++i) {
    const Value e = array_element(v, i);
    SAELAB_CHECK(int_fits(e.type, e.uint, e.sint, kI32), FormatError, file_where(path_), ": key '", key,
                 "': element ", i, " is ", e.describe(), "; expected integers that fit in i32");
    out[i] = static_cast<std::int32_t>(is_unsigned(e.type) ? static_cast<std::int64_t>(e.uint) : e.sint);
  }
  return out;
}

std::vector<float> File::get_f32_array(const std::string& key) const {
  const Value& v = checked_array(path_, key, get(key), "f32");
  SAELAB_CHECK(v.elem_type == ValueType::F32 || v.elem_type == ValueType::F64, FormatError, file_where(path_),
               ": key '", key, "' is ", v.describe(), "; expected an array of f32 (or f64)");
  std::vector<float> out(v.count);
  for (std::uint64_t i = 0; i < v.count; ++i) out[i] = static_cast<float>(array_element(v, i).real);
  return out;
}

const TensorInfo* File::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(const std::string& name) const {
  if (const TensorInfo* t = find_tensor(name)) return *t;
  std::string some;
  for (std::size_t i = 0; i < tensors_.size() && i < 5; ++i)
    some += cat(i ? ", '" : "'", tensors_[i].name, "'");
  throw FormatError(cat(file_where(path_), ": tensor '", name, "' is missing; the file has ", tensors_.size(),
                        " tensors",
                        tensors_.empty() ? "" : cat(": ", some, tensors_.size() > 5 ? ", ..." : "")));
}

const std::uint8_t* File::data(const TensorInfo& t) const {
  SAELAB_CHECK(t.offset <= file_size_ && t.n_bytes <= file_size_ - t.offset, Error, file_where(path_),
               ": tensor '", t.name, "': bytes [", t.offset, ", +", t.n_bytes, ") lie outside the file (",
               file_size_, " bytes); was the TensorInfo taken from another file?");
  return map_.get() + t.offset;
}

}  // namespace saelab::gguf
