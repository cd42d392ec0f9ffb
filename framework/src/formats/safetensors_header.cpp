// Parsing and validation of a safetensors header (see saelab/formats/safetensors.hpp for the layout).
// Everything here treats the bytes as hostile: each check says what was found, where (file and
// tensor) and what is allowed, so a user can tell a truncated download from a foreign format.
#include "formats/safetensors_detail.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "saelab/core/error.hpp"

namespace saelab::safetensors::detail {
namespace {
using ojson = nlohmann::ordered_json;

// A valid header nests at most three levels: root object > tensor entry > shape/offsets array.
constexpr int kMaxNesting = 3;

const DtypeInfo kDtypes[] = {
    // name, dtype, size, write_rank (the Python writer orders data by this, descending)
    {"F64", torch::kFloat64, 8, 8},   {"F32", torch::kFloat32, 4, 7}, {"F16", torch::kFloat16, 2, 4},
    {"BF16", torch::kBFloat16, 2, 5}, {"I64", torch::kInt64, 8, 9},   {"I32", torch::kInt32, 4, 6},
    {"I16", torch::kInt16, 2, 3},     {"I8", torch::kInt8, 1, 2},     {"U8", torch::kUInt8, 1, 1},
    {"BOOL", torch::kBool, 1, 0},
};

// One frame per open JSON object, so a duplicate key can be reported with its owner.
struct ObjectFrame {
  std::string owner;  // key under which this object sits ("" for the root)
  std::set<std::string> keys;
  std::string last_key;
};

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string json_kind(const ojson& v) {
  if (v.is_number_float()) return cat("the number ", v.dump());
  if (v.is_number_integer() && !v.is_number_unsigned()) return cat("the negative number ", v.dump());
  const std::string type = v.type_name();
  const char* article = (type == "array" || type == "object") ? "an " : "a ";
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return cat(article, type, " (", text, ")");
}

ojson parse_json(const std::filesystem::path& file, const std::string& text) {
  std::vector<ObjectFrame> frames;
  int nesting = 0;
  using ev = ojson::parse_event_t;
  ojson::parser_callback_t cb = [&](int, ev event, ojson& parsed) {
    switch (event) {
      case ev::object_start:
      case ev::array_start:
        if (++nesting > kMaxNesting)
          throw FormatError(cat(file_where(file), ": the header nests JSON deeper than ", kMaxNesting,
                                " levels; a safetensors header is {name: {dtype, shape: [...], "
                                "data_offsets: [begin, end]}}"));
        if (event == ev::object_start)
          frames.push_back({frames.empty() ? std::string() : frames.back().last_key, {}, {}});
        break;
      case ev::object_end:
        frames.pop_back();
        [[fallthrough]];
      case ev::array_end:
        --nesting;
        break;
      case ev::key: {
        auto key = parsed.get<std::string>();
        ObjectFrame& f = frames.back();
        if (!f.keys.insert(key).second) {
          if (frames.size() == 1)
            throw FormatError(cat(file_where(file), ", tensor '", key,
                                  "': the name appears twice in the header; every key must be "
                                  "unique (JSON parsers disagree on which copy wins)"));
          throw FormatError(cat(file_where(file), ", tensor '", f.owner, "': key '", key,
                                "' appears twice in its entry; every key must be unique"));
        }
        f.last_key = key;
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return ojson::parse(text, cb);
  } catch (const ojson::exception& e) {
    throw FormatError(cat(file_where(file), ": the header is not valid JSON (", e.what(),
                          "); it must be one UTF-8 JSON object"));
  }
}

Metadata parse_metadata(const std::filesystem::path& file, const ojson& value) {
  SAELAB_CHECK(value.is_object(), FormatError, file_where(file), ": '__metadata__' is ", json_kind(value),
               "; it must be an object of string values");
  Metadata meta;
  for (const auto& [k, v] : value.items()) {
    SAELAB_CHECK(v.is_string(), FormatError, file_where(file), ": '__metadata__' key '", k, "' is ",
                 json_kind(v), "; only string values are allowed");
    meta.emplace(k, v.get<std::string>());
  }
  return meta;
}

std::vector<std::int64_t> parse_shape(const std::filesystem::path& file, const std::string& name,
                                      const ojson& shape) {
  const std::string where = tensor_where(file, name);
  SAELAB_CHECK(shape.is_array(), FormatError, where, ": 'shape' is ", json_kind(shape),
               "; it must be an array of integers >= 0");
  SAELAB_CHECK(shape.size() <= kMaxDims, FormatError, where, ": 'shape' has ", shape.size(),
               " dimensions; at most ", kMaxDims, " are allowed");
  std::vector<std::int64_t> dims;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const ojson& d = shape[i];
    SAELAB_CHECK(d.is_number_unsigned(), FormatError, where, ": shape dimension ", i, " is ", json_kind(d),
                 "; dimensions must be integers >= 0");
    auto value = d.get<std::uint64_t>();
    SAELAB_CHECK(value <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), FormatError,
                 where, ": shape dimension ", i, " is ", value, "; dimensions must be below 2^63");
    dims.push_back(static_cast<std::int64_t>(value));
  }
  return dims;
}

// prod(shape) * dtype size, refusing anything that does not fit in 64 bits (or in a torch tensor).
std::uint64_t byte_count(const std::filesystem::path& file, const std::string& name,
                         const std::vector<std::int64_t>& shape, const DtypeInfo& dt) {
  const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t numel = 1;
  for (std::int64_t d : shape) {
    auto ud = static_cast<std::uint64_t>(d);
    if (ud != 0 && numel > limit / ud)
      throw FormatError(cat(tensor_where(file, name), ": shape ", shape_string(shape),
                            " has more elements than fit in 63 bits; the element count times ", dt.size,
                            " bytes (", dt.name, ") must equal the data_offsets length"));
    numel *= ud;
  }
  if (numel > limit / dt.size)
    throw FormatError(cat(tensor_where(file, name), ": shape ", shape_string(shape), " of ", dt.name,
                          " needs more than 2^63 bytes; the element count times ", dt.size,
                          " bytes must equal the data_offsets length"));
  return numel * dt.size;
}

TensorEntry parse_entry(const std::filesystem::path& file, const std::string& name, const ojson& value,
                        std::uint64_t data_len) {
  const std::string where = tensor_where(file, name);
  SAELAB_CHECK(value.is_object(), FormatError, where, ": the entry is ", json_kind(value),
               "; it must be an object {\"dtype\", \"shape\", \"data_offsets\"}");
  for (const auto& [k, v] : value.items()) {
    (void)v;
    SAELAB_CHECK(k == "dtype" || k == "shape" || k == "data_offsets", FormatError, where, ": unknown key '",
                 k, "'; allowed keys: dtype, shape, data_offsets");
  }
  for (const char* k : {"dtype", "shape", "data_offsets"})
    SAELAB_CHECK(value.contains(k), FormatError, where, ": missing key '", k,
                 "'; each tensor needs dtype, shape and data_offsets");

  TensorEntry e;
  e.name = name;
  const ojson& dt = value["dtype"];
  SAELAB_CHECK(dt.is_string(), FormatError, where, ": 'dtype' is ", json_kind(dt),
               "; allowed: ", allowed_dtypes());
  e.dtype = dt.get<std::string>();
  const DtypeInfo& info = dtype_info(e.dtype, where);
  e.shape = parse_shape(file, name, value["shape"]);

  const ojson& off = value["data_offsets"];
  SAELAB_CHECK(
      off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
      FormatError, where, ": 'data_offsets' is ", json_kind(off),
      "; it must be [begin, end] with integers 0 <= begin <= end");
  e.begin = off[0].get<std::uint64_t>();
  e.end = off[1].get<std::uint64_t>();
  SAELAB_CHECK(e.begin <= e.end, FormatError, where, ": data_offsets [", e.begin, ", ", e.end,
               "] run backwards; begin must be <= end");
  SAELAB_CHECK(e.end <= data_len, FormatError, where, ": data_offsets [", e.begin, ", ", e.end,
               "] run out of bounds: the data section holds ", data_len,
               " bytes; offsets must lie within it (truncated file?)");
  std::uint64_t need = byte_count(file, name, e.shape, info);
  SAELAB_CHECK(e.end - e.begin == need, FormatError, where, ": data_offsets [", e.begin, ", ", e.end,
               "] hold ", e.end - e.begin, " bytes but shape ", shape_string(e.shape), " of ", e.dtype, " (",
               info.size, " bytes each) needs ", need, " bytes; they must match exactly");
  return e;
}

// Tensors must tile the data section: sorted by offset, each starts where the previous ended.
void check_tiling(const std::filesystem::path& file, std::vector<TensorEntry> entries,
                  std::uint64_t data_len) {
  std::stable_sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return std::make_pair(a.begin, a.end) < std::make_pair(b.begin, b.end);
  });
  std::uint64_t pos = 0;
  const TensorEntry* prev = nullptr;
  for (const TensorEntry& e : entries) {
    if (e.begin > pos)
      throw FormatError(cat(tensor_where(file, e.name), ": data_offsets [", e.begin, ", ", e.end,
                            "] leave a gap of ", e.begin - pos, " bytes after ",
                            prev ? cat("tensor '", prev->name, "' (ends at ", pos, ")")
                                 : std::string("the start of the data section"),
                            "; tensors must cover the data section with no gaps"));
    if (e.begin < pos)
      throw FormatError(cat(tensor_where(file, e.name), ": data_offsets [", e.begin, ", ", e.end,
                            "] overlap tensor '", prev->name, "' (which ends at ", pos,
                            "); tensors must not overlap"));
    pos = e.end;
    prev = &e;
  }
  if (pos != data_len)
    throw FormatError(cat(
        file_where(file), ": ", data_len - pos, " trailing bytes after ",
        prev ? cat("the last tensor '", prev->name, "' (ends at ", pos, ")") : std::string("an empty header"),
        "; the data section is ", data_len, " bytes and tensors must cover it exactly"));
}
}  // namespace

std::string file_where(const std::filesystem::path& file) {
  return cat("safetensors file '", file.string(), "'");
}

std::string tensor_where(const std::filesystem::path& file, const std::string& name) {
  return cat(file_where(file), ", tensor '", name, "'");
}

std::string allowed_dtypes() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

const DtypeInfo& dtype_info(const std::string& name, const std::string& where) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d;
  throw FormatError(cat(where, ": dtype '", name, "' is not supported; allowed: ", allowed_dtypes()));
}

const DtypeInfo& dtype_info(torch::Dtype dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.dtype) return d;
  throw Error(cat("safetensors: torch dtype ", c10::toString(dtype),
                  " cannot be saved; supported: ", allowed_dtypes()));
}

Header parse_header(const std::filesystem::path& file, const std::string& text, std::uint64_t data_len) {
  SAELAB_CHECK(!text.empty() && text[0] == '{', FormatError, file_where(file),
               ": the header does not start with '{'; it must be a JSON object (is this a "
               "safetensors file?)");
  ojson root = parse_json(file, text);
  SAELAB_CHECK(root.is_object(), FormatError, file_where(file), ": the header is ", json_kind(root),
               "; it must be a JSON object");
  Header h;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__")
      h.metadata = parse_metadata(file, value);
    else
      h.entries.push_back(parse_entry(file, name, value, data_len));
  }
  check_tiling(file, h.entries, data_len);
  return h;
}

}  // namespace saelab::safetensors::detail
