// safetensors reading and writing (layout in saelab/formats/safetensors.hpp; header checks in
// safetensors_header.cpp).
#include "saelab/formats/safetensors.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "formats/safetensors_detail.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "saelab's safetensors code assumes a little-endian host"
#endif

namespace saelab::safetensors {
namespace fs = std::filesystem;
using detail::file_where;
using detail::tensor_where;

namespace {
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Reads exactly n bytes at offset; a short read means the file shrank under us.
void pread_exact(int fd, void* dst, std::uint64_t n, std::uint64_t offset, const fs::path& file,
                 const char* what) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n, 1u << 30));
    ssize_t got = ::pread(fd, p, chunk, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw Error(cat("cannot read ", what, " of ", file_where(file), ": ", std::strerror(errno)));
    if (got == 0)
      throw FormatError(cat(file_where(file), ": unexpected end of file while reading ", what,
                            " (was the file truncated while being read?)"));
    p += got;
    n -= static_cast<std::uint64_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
}

struct OpenedFile {
  Fd fd;
  std::uint64_t header_len = 0;
  std::uint64_t data_len = 0;
  detail::Header header;
};

OpenedFile open_and_parse(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(cat("cannot open ", file_where(path), ": ", std::strerror(errno)));
  OpenedFile f{Fd(fd), 0, 0, {}};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(cat("cannot stat ", file_where(path), ": ", std::strerror(errno)));
  SAELAB_CHECK(S_ISREG(st.st_mode), FormatError, file_where(path), " is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  SAELAB_CHECK(size >= 8, FormatError, file_where(path), " is ", size,
               " bytes; a safetensors file starts with an 8-byte header length");
  unsigned char len_bytes[8];
  pread_exact(fd, len_bytes, 8, 0, path, "the header length");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  SAELAB_CHECK(n <= kMaxHeaderBytes, FormatError, file_where(path), ": the header length is ", n,
               " bytes; at most ", kMaxHeaderBytes, " bytes are allowed (is this a safetensors file?)");
  SAELAB_CHECK(n <= size - 8, FormatError, file_where(path), ": the header length is ", n, " bytes but only ",
               size - 8, " bytes follow the length field; the file is truncated or not safetensors");
  std::string text(static_cast<std::size_t>(n), '\0');
  pread_exact(fd, text.data(), n, 8, path, "the header");
  f.header_len = n;
  f.data_len = size - 8 - n;
  f.header = detail::parse_header(path, text, f.data_len);
  return f;
}

File to_file(const fs::path& path, detail::Header&& h) {
  File out;
  out.path = path;
  out.entries = std::move(h.entries);
  out.metadata = std::move(h.metadata);
  return out;
}

void check_bool_bytes(const torch::Tensor& t, const fs::path& path, const std::string& name) {
  const auto* p = static_cast<const unsigned char*>(t.data_ptr());
  const auto n = static_cast<std::size_t>(t.numel());
  for (std::size_t i = 0; i < n; ++i)
    SAELAB_CHECK(p[i] <= 1, FormatError, tensor_where(path, name), ": element ", i,
                 " of a BOOL tensor is byte ", static_cast<int>(p[i]), "; allowed bytes: 0, 1");
}
}  // namespace

File load_header(const fs::path& path) {
  OpenedFile f = open_and_parse(path);
  return to_file(path, std::move(f.header));
}

File load(const fs::path& path) {
  OpenedFile f = open_and_parse(path);
  const std::uint64_t data_start = 8 + f.header_len;
  File out = to_file(path, std::move(f.header));
  // Visit tensors in data order so the whole data section is read front to back exactly once,
  // straight into each tensor's own storage.
  std::vector<const TensorEntry*> order;
  for (const auto& e : out.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const TensorEntry* a, const TensorEntry* b) { return a->begin < b->begin; });
  for (const TensorEntry* e : order) {
    const auto& info = detail::dtype_info(e->dtype, tensor_where(path, e->name));
    torch::Tensor t = torch::empty(e->shape, torch::TensorOptions().dtype(info.dtype));
    pread_exact(f.fd.get(), t.data_ptr(), e->end - e->begin, data_start + e->begin, path,
                cat("tensor '", e->name, "'").c_str());
    if (info.dtype == torch::kBool) check_bool_bytes(t, path, e->name);
    out.tensors.emplace(e->name, std::move(t));
  }
  return out;
}

torch::Dtype dtype_from_string(const std::string& s, const std::string& where) {
  return detail::dtype_info(s, where).dtype;
}

std::string dtype_to_string(torch::Dtype d) {
  return detail::dtype_info(d).name;
}

namespace {
struct WriteItem {
  std::string name;
  torch::Tensor tensor;  // CPU, contiguous
  const detail::DtypeInfo* info;
  std::uint64_t nbytes;
};

// Same bytes as the Python writer: data ordered by dtype rank (widest first, which keeps every
// tensor aligned to its element size) then by name; compact JSON; header padded with spaces to a
// multiple of 8.
std::string build_header(std::vector<WriteItem>& items, const Metadata& metadata) {
  std::sort(items.begin(), items.end(), [](const WriteItem& a, const WriteItem& b) {
    if (a.info->write_rank != b.info->write_rank) return a.info->write_rank > b.info->write_rank;
    return a.name < b.name;
  });
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = std::move(m);
  }
  std::uint64_t offset = 0;
  for (const auto& it : items) {
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = it.info->name;
    e["shape"] = it.tensor.sizes().vec();
    e["data_offsets"] = {offset, offset + it.nbytes};
    h[it.name] = std::move(e);
    offset += it.nbytes;
  }
  std::string text;
  try {
    text = h.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat("safetensors: cannot encode the header (", e.what(),
                    "); tensor names and metadata must be valid UTF-8"));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void write_all(int fd, const void* data, std::uint64_t n, const fs::path& tmp) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(n, 1u << 30));
    ssize_t w = ::write(fd, p, chunk);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw Error(cat("cannot write '", tmp.string(), "': ", std::strerror(errno)));
    p += w;
    n -= static_cast<std::uint64_t>(w);
  }
}

void write_file(const fs::path& tmp, const std::string& header, const std::vector<WriteItem>& items) {
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw Error(cat("cannot create '", tmp.string(), "': ", std::strerror(errno)));
  unsigned char len[8];
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  write_all(fd.get(), len, 8, tmp);
  write_all(fd.get(), header.data(), header.size(), tmp);
  for (const auto& it : items) write_all(fd.get(), it.tensor.data_ptr(), it.nbytes, tmp);
  if (::fsync(fd.get()) != 0)
    throw Error(cat("fsync of '", tmp.string(), "' failed: ", std::strerror(errno)));
  if (::close(fd.release()) != 0)
    throw Error(cat("cannot close '", tmp.string(), "': ", std::strerror(errno)));
}
}  // namespace

void save(const fs::path& path, const TensorMap& tensors, const Metadata& metadata) {
  std::vector<WriteItem> items;
  for (const auto& [name, t] : tensors) {
    SAELAB_CHECK(name != "__metadata__", Error, "safetensors: cannot save '", path.string(),
                 "': '__metadata__' is reserved and cannot name a tensor");
    SAELAB_CHECK(t.defined(), Error, "safetensors: cannot save '", path.string(), "': tensor '", name,
                 "' is undefined");
    const detail::DtypeInfo* info = &detail::dtype_info(t.scalar_type());
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    items.push_back({name, c, info, static_cast<std::uint64_t>(c.numel()) * info->size});
  }
  const std::string header = build_header(items, metadata);
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  try {
    write_file(tmp, header, items);
    rename_durable(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace saelab::safetensors
