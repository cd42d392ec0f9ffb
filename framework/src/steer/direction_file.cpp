#include "saelab/steer/direction_file.hpp"

#include <cstring>
#include <regex>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/formats/safetensors.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

struct NpyHeader {
  std::string descr;
  bool fortran = false;
  std::vector<std::int64_t> shape;
  std::size_t data_offset = 0;
};

std::string header_value(const std::string& header, const std::string& key, const std::string& pattern,
                         const fs::path& path) {
  const std::regex re("'" + key + "'\\s*:\\s*(" + pattern + ")");
  std::smatch m;
  SAELAB_CHECK(std::regex_search(header, m, re), FormatError, "'", path.string(),
               "': the .npy header has no valid '", key, "' entry: ", header);
  return m[1].str();
}

NpyHeader parse_npy_header(const std::string& bytes, const fs::path& path) {
  SAELAB_CHECK(bytes.size() >= 10 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0, FormatError, "'",
               path.string(), "' is not a .npy file (it does not start with \\x93NUMPY)");
  const auto major = static_cast<unsigned char>(bytes[6]);
  SAELAB_CHECK(major >= 1 && major <= 3, FormatError, "'", path.string(), "': .npy format version ",
               int(major), " is not supported (1, 2 and 3 are)");
  std::size_t len = 0, start = 0;
  auto byte = [&](std::size_t i) { return static_cast<std::size_t>(static_cast<unsigned char>(bytes[i])); };
  if (major == 1) {
    len = byte(8) | (byte(9) << 8);
    start = 10;
  } else {
    SAELAB_CHECK(bytes.size() >= 12, FormatError, "'", path.string(), "': truncated .npy header");
    len = byte(8) | (byte(9) << 8) | (byte(10) << 16) | (byte(11) << 24);
    start = 12;
  }
  SAELAB_CHECK(len <= 65536 && start + len <= bytes.size(), FormatError, "'", path.string(),
               "': the .npy header claims ", len, " bytes but the file has ", bytes.size() - start,
               " after it");
  const std::string header = bytes.substr(start, len);
  NpyHeader h;
  h.descr = header_value(header, "descr", "'[^']*'", path);
  h.descr = h.descr.substr(1, h.descr.size() - 2);
  h.fortran = header_value(header, "fortran_order", "True|False", path) == "True";
  const std::string shape = header_value(header, "shape", "\\([0-9,\\s]*\\)", path);
  const std::regex num("[0-9]+");
  for (auto it = std::sregex_iterator(shape.begin(), shape.end(), num); it != std::sregex_iterator(); ++it) {
    SAELAB_CHECK(it->str().size() <= 12, FormatError, "'", path.string(), "': shape ", shape,
                 " is too large");
    h.shape.push_back(std::stoll(it->str()));
  }
  h.data_offset = start + len;
  return h;
}

}  // namespace

torch::Tensor load_npy(const fs::path& path) {
  const std::string bytes = read_file(path, std::uintmax_t(1) << 30, ".npy file");
  const NpyHeader h = parse_npy_header(bytes, path);
  torch::Dtype dtype;
  if (h.descr == "<f4")
    dtype = torch::kFloat32;
  else if (h.descr == "<f8")
    dtype = torch::kFloat64;
  else if (h.descr == "<f2")
    dtype = torch::kFloat16;
  else
    throw FormatError(cat("'", path.string(), "': .npy dtype '", h.descr,
                          "' is not supported; save the direction as float32 ('<f4'), float64 or float16"));
  SAELAB_CHECK(!h.fortran || h.shape.size() <= 1, FormatError, "'", path.string(),
               "': Fortran-ordered arrays are not supported; save with np.save(np.ascontiguousarray(a))");
  SAELAB_CHECK(h.shape.size() >= 1 && h.shape.size() <= 2, FormatError, "'", path.string(),
               "': a direction must be 1- or 2-dimensional, got ", h.shape.size(), " dimensions");
  std::int64_t n = 1;
  for (auto s : h.shape) n *= s;
  const std::size_t want = static_cast<std::size_t>(n) * c10::elementSize(dtype);
  SAELAB_CHECK(bytes.size() - h.data_offset == want, FormatError, "'", path.string(),
               "': the header's shape needs ", want, " data bytes but the file holds ",
               bytes.size() - h.data_offset);
  auto t = torch::empty(h.shape, dtype);
  std::memcpy(t.data_ptr(), bytes.data() + h.data_offset, want);
  return t.to(torch::kFloat32);
}

torch::Tensor load_direction(const std::string& spec, std::int64_t expected_d) {
  std::string file = spec, name;
  const auto hash = spec.rfind('#');
  if (hash != std::string::npos) {
    file = spec.substr(0, hash);
    name = spec.substr(hash + 1);
  }
  SAELAB_CHECK(fs::exists(file), UsageError, "direction file '", file, "' does not exist");
  torch::Tensor t;
  const std::string ext = fs::path(file).extension().string();
  if (ext == ".npy") {
    SAELAB_CHECK(name.empty(), UsageError, "'", spec, "': a .npy file holds one array; drop '#", name, "'");
    t = load_npy(file);
  } else if (ext == ".safetensors") {
    auto st = safetensors::load(file);
    if (name.empty()) {
      SAELAB_CHECK(st.tensors.size() == 1, UsageError, "'", file, "' holds ", st.tensors.size(),
                   " tensors; name one as FILE#NAME");
      t = st.tensors.begin()->second;
    } else {
      auto it = st.tensors.find(name);
      SAELAB_CHECK(it != st.tensors.end(), UsageError, "'", file, "' has no tensor '", name, "'");
      t = it->second;
    }
    t = t.to(torch::kFloat32);
  } else {
    throw UsageError(cat("direction file '", file, "': expected a .npy or .safetensors file"));
  }
  SAELAB_CHECK(t.dim() == 1 || (t.dim() == 2 && t.size(0) == 1), FormatError, "'", spec,
               "': a direction must have shape [d] or [1, d], got ", t.sizes());
  t = t.reshape({-1}).contiguous();
  SAELAB_CHECK(expected_d <= 0 || t.size(0) == expected_d, UsageError, "'", spec,
               "' is a direction of width ", t.size(0), " but the hook's width is ", expected_d);
  SAELAB_CHECK(at::isfinite(t).all().item<bool>(), FormatError, "'", spec, "' holds NaN or infinite values");
  return t;
}

}  // namespace saelab
