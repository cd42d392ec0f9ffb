#pragma once
// Durable file operations. Everything saelab writes that must survive a crash (manifests, shards,
// checkpoints, saved SAEs) goes through write_file_atomic or the same temp/fsync/rename sequence:
// a reader sees either the old file or the complete new one, never a torn write.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "saelab/core/export.hpp"

namespace saelab {

// Writes to "<path>.tmp.<pid>", fsyncs it, renames over `path`, fsyncs the directory.
// Throws Error naming the file and errno text (a full disk says "No space left on device").
SAELAB_API void write_file_atomic(const std::filesystem::path& path, std::string_view contents);
// Creates or truncates `path`, writes `contents` and fsyncs it. On failure the partial file is
// removed and Error names the file, the bytes written and the errno text.
SAELAB_API void write_file_synced(const std::filesystem::path& path, std::string_view contents);
SAELAB_API void fsync_file(const std::filesystem::path& path);
SAELAB_API void fsync_dir(const std::filesystem::path& dir);
// Renames and fsyncs the parent directory.
SAELAB_API void rename_durable(const std::filesystem::path& from, const std::filesystem::path& to);
// Reads a whole file, refusing files larger than max_bytes. `what` names it in errors ("config").
SAELAB_API std::string read_file(const std::filesystem::path& path, std::uintmax_t max_bytes,
                                 const std::string& what);
// `root / rel` when it exists and, with every symlink resolved, stays inside root; else nothing.
// Files named by untrusted input (a manifest, an HTTP path) are opened through this, so a symlink
// planted in a run directory cannot lead a reader out of it.
SAELAB_API std::optional<std::filesystem::path> path_inside(const std::filesystem::path& root,
                                                            const std::filesystem::path& rel);

}  // namespace saelab
