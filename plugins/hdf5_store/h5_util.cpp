#include "h5_util.hpp"

#include <algorithm>
#include <vector>

namespace saelab::h5 {

void quiet() {
  // In the thread-safe HDF5 build the automatic printing is a per-thread setting.
  thread_local bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

namespace {
herr_t collect_error(unsigned /*n*/, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  std::string line = err->desc ? err->desc : "";
  // The file driver's message carries a timestamp, addresses and sizes around the errno text;
  // keep what the user needs: "file write failed: No space left on device".
  const std::string tag = "error message = '";
  const auto at = line.find(tag);
  if (at != std::string::npos) {
    const auto end = line.find('\'', at + tag.size());
    const auto cut = std::min({line.find(':'), line.find(", errno"), at});
    line = line.substr(0, cut) + ": " + line.substr(at + tag.size(), end - at - tag.size());
  }
  for (char& c : line)
    if (c == '\n') c = ' ';
  char minor[160] = {0};
  if (H5Eget_msg(err->min_num, nullptr, minor, sizeof minor) > 0 && line.find(minor) == std::string::npos)
    line += cat(line.empty() ? "" : " ", "[", minor, "]");
  for (const auto& seen : *out)
    if (seen == line) return 0;
  out->push_back(std::move(line));
  return 0;
}
}  // namespace

std::string take_error_stack() {
  std::vector<std::string> lines;
  // Upward: the innermost cause (errno text, checksum failure, bad signature) comes first.
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_error, &lines);
  H5Eclear2(H5E_DEFAULT);
  std::string out;
  const std::size_t keep = 4;
  for (std::size_t i = 0; i < lines.size() && i < keep; ++i) out += (i ? "; " : "") + lines[i];
  if (lines.size() > keep) out += " ...";
  return out;
}

Handle float16_type() {
  Handle t = type_handle(H5Tcopy(H5T_IEEE_F32LE), "cannot create the float16 HDF5 type");
  // sign bit 15, exponent bits 10..14, mantissa bits 0..9, exponent bias 15.
  check(H5Tset_fields(t.get(), 15, 10, 5, 0, 10), "float16 type: fields");
  check(H5Tset_size(t.get(), 2), "float16 type: size");
  check(H5Tset_ebias(t.get(), 15), "float16 type: bias");
  return t;
}

void write_attr(hid_t obj, const char* name, const std::string& value) {
  const std::string what = cat("cannot write attribute '", name, "'");
  Handle t = type_handle(H5Tcopy(H5T_C_S1), what);
  check(H5Tset_size(t.get(), H5T_VARIABLE), what);
  check(H5Tset_cset(t.get(), H5T_CSET_UTF8), what);
  Handle sp = space_handle(H5Screate(H5S_SCALAR), what);
  Handle a = attr_handle(H5Acreate2(obj, name, t.get(), sp.get(), H5P_DEFAULT, H5P_DEFAULT), what);
  const char* p = value.c_str();
  check(H5Awrite(a.get(), t.get(), &p), what);
}

void write_attr(hid_t obj, const char* name, std::int64_t value) {
  const std::string what = cat("cannot write attribute '", name, "'");
  Handle sp = space_handle(H5Screate(H5S_SCALAR), what);
  Handle a = attr_handle(H5Acreate2(obj, name, H5T_STD_I64LE, sp.get(), H5P_DEFAULT, H5P_DEFAULT), what);
  check(H5Awrite(a.get(), H5T_NATIVE_INT64, &value), what);
}

bool has_attr(hid_t obj, const char* name) {
  htri_t r = H5Aexists(obj, name);
  if (r < 0) take_error_stack();
  return r > 0;
}

namespace {
Handle open_scalar_attr(hid_t obj, const char* name, const std::string& where, H5T_class_t want,
                        const char* want_name) {
  if (!has_attr(obj, name))
    throw FormatError(
        cat(where, ": attribute '", name, "' is missing; a saelab shard has it (", want_name, ")"));
  Handle a = attr_handle<FormatError>(H5Aopen(obj, name, H5P_DEFAULT),
                                      cat(where, ": cannot open attribute '", name, "'"));
  Handle sp = space_handle<FormatError>(H5Aget_space(a.get()), cat(where, ": attribute '", name, "'"));
  Handle t = type_handle<FormatError>(H5Aget_type(a.get()), cat(where, ": attribute '", name, "'"));
  if (H5Sget_simple_extent_npoints(sp.get()) != 1 || H5Tget_class(t.get()) != want)
    throw FormatError(cat(where, ": attribute '", name, "' is not a single ", want_name));
  return a;
}
}  // namespace

std::string read_string_attr(hid_t obj, const char* name, const std::string& where) {
  Handle a = open_scalar_attr(obj, name, where, H5T_STRING, "string");
  const std::string what = cat(where, ": cannot read attribute '", name, "'");
  Handle ft = type_handle<FormatError>(H5Aget_type(a.get()), what);
  Handle mt = type_handle<FormatError>(H5Tcopy(H5T_C_S1), what);
  // HDF5 converts between ASCII and UTF-8 strings only as "no conversion": match the file's cset.
  check<FormatError>(H5Tset_cset(mt.get(), H5Tget_cset(ft.get())), what);
  if (H5Tis_variable_str(ft.get()) > 0) {
    check<FormatError>(H5Tset_size(mt.get(), H5T_VARIABLE), what);
    char* p = nullptr;
    check<FormatError>(H5Aread(a.get(), mt.get(), &p), what);
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const std::size_t size = H5Tget_size(ft.get());
  if (size == 0 || size > (1u << 20)) throw FormatError(cat(what, ": string size ", size));
  check<FormatError>(H5Tset_size(mt.get(), size), what);
  std::string s(size, '\0');
  check<FormatError>(H5Aread(a.get(), mt.get(), s.data()), what);
  s.resize(s.find_last_not_of('\0') + 1);
  return s;
}

std::int64_t read_int_attr(hid_t obj, const char* name, const std::string& where) {
  Handle a = open_scalar_attr(obj, name, where, H5T_INTEGER, "integer");
  std::int64_t v = 0;
  check<FormatError>(H5Aread(a.get(), H5T_NATIVE_INT64, &v),
                     cat(where, ": cannot read attribute '", name, "'"));
  return v;
}

}  // namespace saelab::h5
