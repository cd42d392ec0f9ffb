#include "saelab/core/fs_util.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

#include "saelab/core/error.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {
std::string errno_text() {
  return std::strerror(errno);
}

void fsync_fd_path(const fs::path& path, int flags, const char* what) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw Error(cat("cannot open ", what, " '", path.string(), "' to fsync: ", errno_text()));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) {
    errno = saved;
    throw Error(cat("fsync of ", what, " '", path.string(), "' failed: ", errno_text()));
  }
}
}  // namespace

void fsync_file(const fs::path& path) {
  fsync_fd_path(path, O_RDONLY, "file");
}

void fsync_dir(const fs::path& dir) {
  fsync_fd_path(dir.empty() ? fs::path(".") : dir, O_RDONLY | O_DIRECTORY, "directory");
}

void rename_durable(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw Error(cat("cannot rename '", from.string(), "' to '", to.string(), "': ", errno_text()));
  fsync_dir(to.parent_path());
}

void write_file_synced(const fs::path& path, std::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(cat("cannot create '", path.string(), "': ", errno_text()));
  const char* p = contents.data();
  std::size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string err = errno_text();
      ::close(fd);
      ::unlink(path.c_str());  // a partial file only holds on to space a full disk needs back
      throw Error(cat("cannot write '", path.string(), "' (", contents.size() - left, " of ", contents.size(),
                      " bytes written): ", err));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    std::string err = errno_text();
    ::close(fd);
    ::unlink(path.c_str());
    throw Error(cat("fsync of '", path.string(), "' failed: ", err));
  }
  if (::close(fd) != 0) {
    std::string err = errno_text();
    ::unlink(path.c_str());
    throw Error(cat("cannot close '", path.string(), "': ", err));
  }
}

void write_file_atomic(const fs::path& path, std::string_view contents) {
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  try {
    write_file_synced(tmp, contents);
  } catch (const Error& e) {
    throw Error(cat(e.what(), " (the previous version of '", path.string(), "', if any, is left intact)"));
  }
  rename_durable(tmp, path);
}

std::string read_file(const fs::path& path, std::uintmax_t max_bytes, const std::string& what) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) throw Error(cat("cannot read ", what, " '", path.string(), "': ", ec.message()));
  if (size > max_bytes)
    throw Error(cat(what, " '", path.string(), "' is ", size, " bytes; the limit is ", max_bytes, " bytes"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(cat("cannot open ", what, " '", path.string(), "'"));
  std::string data(static_cast<std::size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size)
    throw Error(cat("short read on ", what, " '", path.string(), "'"));
  return data;
}

std::optional<fs::path> path_inside(const fs::path& root, const fs::path& rel) {
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  const fs::path full = fs::canonical(base / rel, ec);
  if (ec) return std::nullopt;
  const auto mismatch = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (mismatch.first != base.end()) return std::nullopt;
  return full;
}

}  // namespace saelab
