#pragma once
// A file compiled into a binary by saelab_embed_files (cmake/SaelabEmbed.cmake), which defines
//   extern const saelab::EmbeddedFile <symbol>[];  extern const std::size_t <symbol>_count;
#include <cstddef>

namespace saelab {

struct EmbeddedFile {
  const char* name;  // the file's name without its directory
  const unsigned char* data;
  std::size_t size;  // data[size] is a terminating 0, not counted
};

}  // namespace saelab
