// GGUF header parsing and validation (layout in saelab/formats/gguf.hpp; dequantization in
// gguf_dequant.cpp). The bytes are hostile: every count and length is checked against what is left
// of the file before anything is allocated for it, and every error says what was found, where
// (file, key or tensor, offset) and what is allowed.
#include "saelab/formats/gguf.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "saelab/core/error.hpp"
#include "formats/gguf_value.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "saelab's GGUF code assumes a little-endian host"
#endif

namespace saelab::gguf {
namespace fs = std::filesystem;
using namespace detail;

namespace {

constexpr std::uint32_t kMagic = 0x46554747;         // "GGUF" read as a little-endian u32
constexpr std::uint64_t kHeaderBytes = 24;           // magic, version, tensor count, kv count
constexpr std::uint32_t kMaxDims = 4;                // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;                    // real files never nest; ggml itself refuses to
constexpr std::uint64_t kMaxNestedArrays = 1 << 16;  // per array of arrays (each is a Value)
// The smallest a kv pair can be: key length (8), value type (4), a u8 value (1).
constexpr std::uint64_t kMinKvBytes = 13;
// The smallest a tensor info can be: name length (8), n_dims (4), one dim (8), type (4), offset (8).
constexpr std::uint64_t kMinTensorInfoBytes = 32;
constexpr std::uint64_t kDefaultAlignment = 32;
constexpr std::uint64_t kMaxCount = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

const TypeTraits kTypes[] = {
    {GgmlType::F32, "F32", 1, 4},
    {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 18},
    {GgmlType::Q4_1, "Q4_1", 32, 20},
    {GgmlType::Q5_0, "Q5_0", 32, 22},
    {GgmlType::Q5_1, "Q5_1", 32, 24},
    {GgmlType::Q8_0, "Q8_0", 32, 34},
    {GgmlType::Q8_1, "Q8_1", 32, 40},
    {GgmlType::Q2_K, "Q2_K", 256, 84},
    {GgmlType::Q3_K, "Q3_K", 256, 110},
    {GgmlType::Q4_K, "Q4_K", 256, 144},
    {GgmlType::Q5_K, "Q5_K", 256, 176},
    {GgmlType::Q6_K, "Q6_K", 256, 210},
    {GgmlType::Q8_K, "Q8_K", 256, 292},
    {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66},
    {GgmlType::IQ2_XS, "IQ2_XS", 256, 74},
    {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98},
    {GgmlType::IQ1_S, "IQ1_S", 256, 50},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 18},
    {GgmlType::IQ3_S, "IQ3_S", 256, 110},
    {GgmlType::IQ2_S, "IQ2_S", 256, 82},
    {GgmlType::IQ4_XS, "IQ4_XS", 256, 136},
    {GgmlType::I8, "I8", 1, 1},
    {GgmlType::I16, "I16", 1, 2},
    {GgmlType::I32, "I32", 1, 4},
    {GgmlType::I64, "I64", 1, 8},
    {GgmlType::F64, "F64", 1, 8},
    {GgmlType::IQ1_M, "IQ1_M", 256, 56},
    {GgmlType::BF16, "BF16", 1, 2},
    {GgmlType::TQ1_0, "TQ1_0", 256, 54},
    {GgmlType::TQ2_0, "TQ2_0", 256, 66},
    {GgmlType::MXFP4, "MXFP4", 32, 17},
    {GgmlType::NVFP4, "NVFP4", 64, 36},
    {GgmlType::Q1_0, "Q1_0", 128, 18},
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Buffered, bounded reads of the header. Every read first checks that the bytes exist, so a
// count or length from the file is never trusted further than the file reaches.
class Reader {
 public:
  Reader(int fd, std::uint64_t size, const fs::path& file) : fd_(fd), size_(size), file_(file) {}

  std::uint64_t offset() const { return pos_; }
  std::uint64_t remaining() const { return size_ - pos_; }
  std::uint64_t size() const { return size_; }
  // What is being read ("key 'general.name'", "tensor 'blk.0.attn_q.weight'"), for messages.
  void set_item(std::string item) { item_ = std::move(item); }

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(cat(file_where(file_), item_.empty() ? "" : ": ", item_, ": ", what));
  }

  void need(std::uint64_t n, const char* what) const {
    if (n > remaining())
      fail(cat("truncated: ", what, " at offset ", pos_, " needs ", n, " bytes but the file (", size_,
               " bytes) ends after ", remaining(), "; is the download incomplete?"));
  }

  void bytes(void* dst, std::uint64_t n, const char* what) {
    need(n, what);
    auto* out = static_cast<char*>(dst);
    while (n > 0) {
      if (pos_ < buf_start_ || pos_ >= buf_start_ + buf_.size()) {
        if (n >= kChunk) {  // a long string or array: straight into its destination
          pread_exact(out, n, pos_);
          pos_ += n;
          return;
        }
        refill();
      }
      const std::uint64_t in_buf = buf_start_ + buf_.size() - pos_;
      const std::uint64_t take = std::min(n, in_buf);
      std::memcpy(out, buf_.data() + (pos_ - buf_start_), take);
      out += take;
      pos_ += take;
      n -= take;
    }
  }

  template <class T>
  T scalar(const char* what) {
    T v;
    bytes(&v, sizeof v, what);
    return v;
  }

  std::string string(const char* what) {
    const auto len = scalar<std::uint64_t>(what);
    if (len > remaining())
      fail(cat(what, " at offset ", pos_ - 8, " claims ", len, " bytes but only ", remaining(),
               " bytes remain in the file (truncated or corrupt?)"));
    std::string s(len, '\0');
    bytes(s.data(), len, what);
    return s;
  }

 private:
  static constexpr std::uint64_t kChunk = 1 << 20;

  void refill() {
    buf_.resize(std::min(kChunk, remaining()));
    buf_start_ = pos_;
    pread_exact(buf_.data(), buf_.size(), pos_);
  }

  // need() has checked the size, so a short read means the file shrank while being read.
  void pread_exact(char* dst, std::uint64_t n, std::uint64_t at) const {
    std::uint64_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, dst + done, std::min<std::uint64_t>(n - done, 1u << 30),
                                  static_cast<off_t>(at + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw Error(cat(file_where(file_), ": cannot read: ", std::strerror(errno)));
      if (got == 0) fail(cat("unexpected end of file at offset ", at + done, " (did the file shrink?)"));
      done += static_cast<std::uint64_t>(got);
    }
  }

  int fd_;
  std::uint64_t size_;
  const fs::path& file_;
  std::uint64_t pos_ = 0;
  std::vector<char> buf_;
  std::uint64_t buf_start_ = 0;
  std::string item_;
};

ValueType read_value_type(Reader& r, const char* what) {
  const auto t = r.scalar<std::uint32_t>(what);
  if (t > static_cast<std::uint32_t>(ValueType::F64))
    r.fail(cat(what, " at offset ", r.offset() - 4, " is ", t,
               ", which is not a GGUF value type (0 u8 ... 12 f64)"));
  return static_cast<ValueType>(t);
}

void check_bools(Reader& r, const std::uint8_t* p, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i)
    if (p[i] > 1) r.fail(cat("a bool holds the byte ", int{p[i]}, "; bools must be 0 or 1"));
}

Value read_value(Reader& r, ValueType type, int depth);

void read_array(Reader& r, Value& v, int depth) {
  if (depth >= kMaxArrayDepth)
    r.fail(cat("arrays nest deeper than ", kMaxArrayDepth, " levels at offset ", r.offset()));
  v.elem_type = read_value_type(r, "the array element type");
  v.count = r.scalar<std::uint64_t>("the array length");
  const std::uint64_t size = fixed_size(v.elem_type);
  // The least each element can occupy bounds the count before anything is allocated.
  // Only the fixed-size case allocates from the count (exactly the bytes it reads); strings and
  // nested arrays grow as they are read, so a lying count costs no memory.
  const std::uint64_t min_size = size ? size : v.elem_type == ValueType::STRING ? 8 : 12;
  if (v.count > r.remaining() / min_size)
    r.fail(cat("an array of ", v.count, " ", value_type_name(v.elem_type), " at offset ", r.offset() - 12,
               " needs at least ", v.count, " x ", min_size, " bytes but only ", r.remaining(),
               " bytes remain in the file"));
  if (size) {
    v.raw.resize(v.count * size);
    r.bytes(v.raw.data(), v.raw.size(), "the array elements");
    if (v.elem_type == ValueType::BOOL) check_bools(r, v.raw.data(), v.count);
  } else if (v.elem_type == ValueType::STRING) {
    for (std::uint64_t i = 0; i < v.count; ++i) v.strings.push_back(r.string("an array string"));
  } else {
    if (v.count > kMaxNestedArrays)
      r.fail(cat("an array holds ", v.count, " arrays; at most ", kMaxNestedArrays, " are allowed"));
    for (std::uint64_t i = 0; i < v.count; ++i) {
      Value inner;
      inner.type = ValueType::ARRAY;
      read_array(r, inner, depth + 1);
      v.arrays.push_back(std::move(inner));
    }
  }
}

Value read_value(Reader& r, ValueType type, int depth) {
  Value v;
  v.type = type;
  switch (type) {
    case ValueType::U8:
      v.uint = r.scalar<std::uint8_t>("a u8 value");
      break;
    case ValueType::U16:
      v.uint = r.scalar<std::uint16_t>("a u16 value");
      break;
    case ValueType::U32:
      v.uint = r.scalar<std::uint32_t>("a u32 value");
      break;
    case ValueType::U64:
      v.uint = r.scalar<std::uint64_t>("a u64 value");
      break;
    case ValueType::I8:
      v.sint = sign_extend(r.scalar<std::uint8_t>("an i8 value"));
      break;
    case ValueType::I16:
      v.sint = r.scalar<std::int16_t>("an i16 value");
      break;
    case ValueType::I32:
      v.sint = r.scalar<std::int32_t>("an i32 value");
      break;
    case ValueType::I64:
      v.sint = r.scalar<std::int64_t>("an i64 value");
      break;
    case ValueType::F32:
      v.real = r.scalar<float>("an f32 value");
      break;
    case ValueType::F64:
      v.real = r.scalar<double>("an f64 value");
      break;
    case ValueType::BOOL: {
      const auto b = r.scalar<std::uint8_t>("a bool value");
      check_bools(r, &b, 1);
      v.uint = b;
      break;
    }
    case ValueType::STRING:
      v.string = r.string("a string value");
      break;
    case ValueType::ARRAY:
      read_array(r, v, depth);
      break;
  }
  return v;
}

// Everything the header says, validated; File's constructor takes it over.
struct Parsed {
  std::uint32_t version = 0;
  std::uint64_t alignment = kDefaultAlignment;
  std::uint64_t data_offset = 0;
  std::vector<KeyValue> kvs;
  std::unordered_map<std::string, std::size_t> kv_index;
  std::vector<TensorInfo> tensors;
  std::unordered_map<std::string, std::size_t> tensor_index;
};

struct Counts {
  std::uint64_t tensors = 0, kvs = 0;
};

std::string hex_bytes(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += i ? " " : "";
    s += digits[p[i] >> 4];
    s += digits[p[i] & 0xF];
  }
  return s;
}

Counts read_preamble(Reader& r, Parsed& p) {
  if (r.size() < 4)
    r.fail(cat("truncated: the file has ", r.size(),
               " bytes; a GGUF file starts with the 4-byte magic "
               "\"GGUF\" and a ",
               kHeaderBytes, "-byte header"));
  unsigned char magic[4];
  r.bytes(magic, 4, "the magic");
  std::uint32_t m;
  std::memcpy(&m, magic, 4);
  if (m != kMagic)
    r.fail(cat("bad magic: the file starts with the bytes ", hex_bytes(magic, 4),
               " but a GGUF file starts with \"GGUF\" (47 47 55 46); is this a GGUF file?"));
  p.version = r.scalar<std::uint32_t>("the version");
  if (p.version != 2 && p.version != 3) {
    const bool swapped = p.version != 0 && (p.version & 0xFFFFu) == 0;
    r.fail(cat("GGUF version ", p.version, " is not supported; saelab reads versions 2 and 3",
               p.version == 1 ? " (version 1, with 32-bit counts, predates August 2023; re-convert the model)"
               : swapped      ? " (this looks like a big-endian file, which saelab does not read)"
                              : ""));
  }
  Counts c;
  c.tensors = r.scalar<std::uint64_t>("the tensor count");
  c.kvs = r.scalar<std::uint64_t>("the metadata kv count");
  const std::uint64_t room = r.remaining();
  if (c.tensors > room / kMinTensorInfoBytes)
    r.fail(cat("the header claims ", c.tensors, " tensors, but the ", room, " bytes after the header hold ",
               "at most ", room / kMinTensorInfoBytes, " (a tensor info takes at least ", kMinTensorInfoBytes,
               " bytes; truncated or corrupt?)"));
  if (c.kvs > room / kMinKvBytes)
    r.fail(cat("the header claims ", c.kvs, " metadata kv pairs, but the ", room,
               " bytes after the header hold at most ", room / kMinKvBytes, " (a kv pair takes at least ",
               kMinKvBytes, " bytes; truncated or corrupt?)"));
  return c;
}

// general.alignment, when present, must be a u32 nonzero power of two (gguf.h).
void take_alignment(Reader& r, const Value& v, Parsed& p) {
  if (v.type != ValueType::U32)
    r.fail(cat("the value is ", v.describe(), "; the alignment must be a u32 (a nonzero power of two)"));
  if (v.uint == 0 || (v.uint & (v.uint - 1)) != 0)
    r.fail(cat("the value is ", v.uint, "; the alignment must be a nonzero power of two"));
  p.alignment = v.uint;
}

void read_kvs(Reader& r, std::uint64_t n, Parsed& p) {
  for (std::uint64_t i = 0; i < n; ++i) {
    r.set_item(cat("metadata kv pair ", i));
    std::string key = r.string("the key");
    r.set_item(cat("key '", key, "'"));
    if (p.kv_index.count(key))
      r.fail(
          "the key appears twice in the metadata; keys must be unique (readers disagree on which copy wins)");
    const ValueType type = read_value_type(r, "the value type");
    Value v = read_value(r, type, 0);
    if (key == "general.alignment") take_alignment(r, v, p);
    p.kv_index.emplace(key, p.kvs.size());
    p.kvs.push_back({std::move(key), std::move(v)});
  }
}

std::string dims_string(const std::vector<std::uint64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// The element and byte counts of a tensor, refusing anything that does not fit in 63 bits.
void size_tensor(Reader& r, const TypeTraits& tt, TensorInfo& t) {
  std::uint64_t n = 1;
  for (std::uint64_t d : t.dims) {
    if (n > kMaxCount / d)
      r.fail(cat("dims ", dims_string(t.dims), " have more elements than fit in 63 bits"));
    n *= d;
  }
  if (t.dims[0] % tt.block_size != 0)
    r.fail(cat("dims ", dims_string(t.dims), ": the inner dimension ", t.dims[0], " is not a multiple of ",
               tt.name, "'s block size ", tt.block_size, "; quantized rows are whole blocks"));
  t.n_elements = n;
  const std::uint64_t blocks = n / tt.block_size;
  if (blocks > kMaxCount / tt.type_size)
    r.fail(cat("dims ", dims_string(t.dims), " of ", tt.name, " need more than 2^63 bytes"));
  t.n_bytes = blocks * tt.type_size;
}

TensorInfo read_tensor_info(Reader& r, std::uint64_t alignment) {
  TensorInfo t;
  const auto n_dims = r.scalar<std::uint32_t>("n_dims");
  if (n_dims < 1 || n_dims > kMaxDims)
    r.fail(cat("n_dims is ", n_dims, "; GGUF tensors have 1 to ", kMaxDims, " dimensions"));
  t.dims.resize(n_dims);
  for (std::uint32_t i = 0; i < n_dims; ++i) {
    t.dims[i] = r.scalar<std::uint64_t>("a dimension");
    if (t.dims[i] == 0) r.fail(cat("dimension ", i, " is 0; every dimension must be at least 1"));
  }
  const auto id = r.scalar<std::uint32_t>("the ggml type");
  const TypeTraits* tt = type_traits(id);
  if (!tt)
    r.fail(cat("ggml type id ", id, " is not a known ggml type (F32 = 0 ... ",
               kTypes[std::size(kTypes) - 1].name, " = ",
               static_cast<std::uint32_t>(kTypes[std::size(kTypes) - 1].type),
               "; ids 4, 5, 31-33 and 36-38 were removed from ggml)"));
  t.type = tt->type;
  size_tensor(r, *tt, t);
  t.offset = r.scalar<std::uint64_t>("the data offset");  // relative until place_tensors()
  if (t.offset % alignment != 0)
    r.fail(cat("offset ", t.offset, " is not a multiple of the alignment ", alignment));
  return t;
}

void read_tensor_infos(Reader& r, std::uint64_t n, Parsed& p) {
  for (std::uint64_t i = 0; i < n; ++i) {
    r.set_item(cat("tensor info ", i));
    std::string name = r.string("the tensor name");
    r.set_item(cat("tensor '", name, "'"));
    if (p.tensor_index.count(name)) r.fail("the name appears twice; tensor names must be unique");
    TensorInfo t = read_tensor_info(r, p.alignment);
    t.name = std::move(name);
    p.tensor_index.emplace(t.name, p.tensors.size());
    p.tensors.push_back(std::move(t));
  }
  r.set_item("");
}

// Makes offsets absolute, checks that each tensor lies inside the file and that none overlap.
void place_tensors(Reader& r, Parsed& p) {
  const std::uint64_t end_of_infos = r.offset();
  p.data_offset = (end_of_infos + p.alignment - 1) / p.alignment * p.alignment;
  if (p.tensors.empty()) return;  // a metadata-only file may end without padding
  if (p.data_offset > r.size())
    r.fail(cat("truncated: the data section would start at offset ", p.data_offset,
               " (the tensor infos end at ", end_of_infos, ", padded to the alignment ", p.alignment,
               ") but the file has ", r.size(), " bytes"));
  const std::uint64_t data_len = r.size() - p.data_offset;
  for (TensorInfo& t : p.tensors) {
    if (t.offset > data_len || t.n_bytes > data_len - t.offset)
      r.fail(cat("tensor '", t.name, "': bytes [", t.offset, ", +", t.n_bytes,
                 ") of the data section run past ", "the end of the file: the data section starts at offset ",
                 p.data_offset, " and holds ", data_len, " bytes (truncated file?)"));
    t.offset += p.data_offset;
  }
  std::vector<std::size_t> order(p.tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return p.tensors[a].offset < p.tensors[b].offset; });
  for (std::size_t k = 1; k < order.size(); ++k) {
    const TensorInfo& prev = p.tensors[order[k - 1]];
    const TensorInfo& t = p.tensors[order[k]];
    if (t.offset < prev.offset + prev.n_bytes)
      r.fail(cat("tensor '", t.name, "' (bytes [", t.offset, ", ", t.offset + t.n_bytes,
                 ")) overlaps tensor '", prev.name, "' (bytes [", prev.offset, ", ",
                 prev.offset + prev.n_bytes, ")); tensors must not share bytes"));
  }
}

std::shared_ptr<const std::uint8_t> map_file(int fd, std::uint64_t size, const fs::path& path) {
  void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED)
    throw Error(cat(file_where(path), ": cannot map ", size, " bytes: ", std::strerror(errno)));
  const auto len = static_cast<std::size_t>(size);
  return std::shared_ptr<const std::uint8_t>(
      static_cast<const std::uint8_t*>(p),
      [len](const std::uint8_t* q) { ::munmap(const_cast<std::uint8_t*>(q), len); });
}

}  // namespace

const TypeTraits* type_traits(std::uint32_t id) {
  for (const TypeTraits& t : kTypes)
    if (static_cast<std::uint32_t>(t.type) == id) return &t;
  return nullptr;
}

std::string type_name(GgmlType type) {
  const TypeTraits* t = type_traits(static_cast<std::uint32_t>(type));
  return t ? std::string(t->name) : cat("unknown type ", static_cast<std::uint32_t>(type));
}

std::string value_type_name(ValueType type) {
  static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<std::uint32_t>(type);
  return i < std::size(names) ? std::string(names[i]) : cat("unknown value type ", i);
}

std::string Value::describe() const {
  std::string t = value_type_name(type);
  if (is_unsigned(type)) return cat(t, " ", uint);
  if (is_signed(type)) return cat(t, " ", sint);
  switch (type) {
    case ValueType::F32:
    case ValueType::F64:
      return cat(t, " ", real);
    case ValueType::BOOL:
      return cat("bool ", uint ? "true" : "false");
    case ValueType::STRING:
      return cat("string '", string.size() > 40 ? string.substr(0, 37) + "..." : string, "'");
    case ValueType::ARRAY:
      return cat("array of ", count, " ", value_type_name(elem_type));
    default:
      return t;
  }
}

std::vector<std::int64_t> torch_shape(const TensorInfo& tensor) {
  return std::vector<std::int64_t>(tensor.dims.rbegin(), tensor.dims.rend());
}

File::File(const fs::path& path) : path_(path) {
  const int raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw_fd < 0) throw Error(cat(file_where(path), ": cannot open: ", std::strerror(errno)));
  Fd fd(raw_fd);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    throw Error(cat(file_where(path), ": cannot stat: ", std::strerror(errno)));
  SAELAB_CHECK(S_ISREG(st.st_mode), FormatError, file_where(path), ": not a regular file");
  file_size_ = static_cast<std::uint64_t>(st.st_size);

  Reader r(fd.get(), file_size_, path_);
  Parsed p;
  const Counts counts = read_preamble(r, p);
  read_kvs(r, counts.kvs, p);
  read_tensor_infos(r, counts.tensors, p);
  place_tensors(r, p);

  version_ = p.version;
  alignment_ = p.alignment;
  data_offset_ = p.data_offset;
  kvs_ = std::move(p.kvs);
  kv_index_ = std::move(p.kv_index);
  tensors_ = std::move(p.tensors);
  tensor_index_ = std::move(p.tensor_index);
  map_ = map_file(fd.get(), file_size_, path_);
}

const Value* File::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

}  // namespace saelab::gguf
