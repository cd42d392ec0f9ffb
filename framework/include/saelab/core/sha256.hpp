#pragma once
// SHA-256 (through OpenSSL's EVP interface) for file identities: tokenizer files, store shards,
// checkpoint files, corpus fingerprints, downloaded model files.
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "saelab/core/export.hpp"

namespace saelab {

class SAELAB_API Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex_digest();  // finalizes; lowercase hex, 64 characters

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

SAELAB_API std::string sha256_hex(std::string_view data);
SAELAB_API std::string sha256_file(const std::filesystem::path& path);

}  // namespace saelab
