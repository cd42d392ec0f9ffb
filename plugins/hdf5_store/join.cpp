// Joining the parts of a data-parallel harvest into one store (format: store_format.hpp).
#include <set>

#include "h5_util.hpp"
#include "hdf5_store.hpp"
#include "saelab/core/log.hpp"

namespace saelab::hdf5_store {
namespace fs = std::filesystem;

namespace {

// The part's directory relative to the store, checked to be one `parts/<name>` entry inside it.
std::string part_prefix(const fs::path& dir, const fs::path& part) {
  const fs::path rel = part.lexically_relative(dir);
  const auto first = rel.begin();
  const bool ok = !rel.empty() && std::distance(rel.begin(), rel.end()) == 2 && *first == kPartsDir &&
                  is_plain_file_name(std::next(first)->string());
  SAELAB_CHECK(ok, Error, "hdf5 store: part '", part.string(), "' is not a directory ",
               (dir / kPartsDir).string(),
               "/<name>; the parts of a data-parallel harvest live inside the store they join");
  return rel.generic_string() + "/";
}

}  // namespace

void Hdf5Store::join_parts(const fs::path& dir, const std::vector<fs::path>& parts) {
  h5::quiet();
  SAELAB_CHECK(!parts.empty(), Error, "hdf5 store: no parts to join into ", dir.string());
  Manifest joined;
  std::int64_t end = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string prefix = part_prefix(dir, parts[i]);
    const Manifest m = read_manifest(parts[i]);
    const std::string where = (parts[i] / kManifestName).string();
    SAELAB_CHECK(m.complete, FormatError, where, ": part ", i + 1, " of ", parts.size(),
                 " is not complete (its rank has not finished harvesting); resume the harvest on every rank");
    if (i == 0) {
      joined.meta = m.meta;
      joined.layout = m.layout;
    } else {
      const std::string diff = meta_difference(joined.meta, m.meta);
      SAELAB_CHECK(diff.empty(), FormatError, where, ": part ", i + 1, " differs from part 1: ", diff);
    }
    for (ShardEntry e : m.shards) {
      SAELAB_CHECK(e.first_sequence >= end, FormatError, where, ": shard ", e.file, " starts at sequence ",
                   e.first_sequence, " but the parts before it end at ", end,
                   "; the parts must hold consecutive, non-overlapping sequence ranges in order");
      end = e.end_sequence;
      e.file = prefix + e.file;
      joined.shards.push_back(e);
    }
    joined.accumulator.merge(m.accumulator);
  }
  joined.complete = true;
  joined.stats = joined.accumulator.finish();
  write_manifest(dir, joined);  // the one commit: atomic, so the store is complete or absent
  log::info("store ", dir.string(), ": joined ", parts.size(), " parts, ", joined.rows(), " rows in ",
            joined.shards.size(), " shards");
}

}  // namespace saelab::hdf5_store
