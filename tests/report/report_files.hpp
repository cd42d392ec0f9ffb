#pragma once
// Reading a report directory back in tests: the data scripts as JSON, a latent's feature record.
#include <cctype>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "support/support.hpp"

namespace saelab::test {

// "SAELAB.x(<json>);" or "SAELAB.features(<n>, <json>);" -> <json>.
inline nlohmann::json read_data_script(const std::filesystem::path& p) {
  std::string s = read_bytes(p);
  std::size_t at = s.find('(') + 1;
  if (std::isdigit(static_cast<unsigned char>(s[at]))) at = s.find(", ", at) + 2;
  const std::size_t end = s.rfind(");");
  return nlohmann::json::parse(s.substr(at, end - at));
}

inline nlohmann::json read_feature(const std::filesystem::path& report, std::int64_t id,
                                   std::int64_t chunk = 64) {
  char name[32];
  std::snprintf(name, sizeof name, "%04lld.js", static_cast<long long>(id / chunk));
  return read_data_script(report / "data" / "features" / name).at(std::to_string(id));
}

}  // namespace saelab::test
