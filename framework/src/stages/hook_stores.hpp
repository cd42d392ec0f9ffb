#pragma once
// Internal: which hooks a harvest captures and where each one's store lives.
//
// A harvest of one hook (harvest.hook) writes its store at harvest.store_dir, as always. A harvest
// of several (harvest.hooks, from one forward pass) writes one complete store per hook:
//   <store_dir>/<hook>/manifest.json, shard-*.h5    e.g. store/blocks.3.hook_mlp_out/
// Every sub-store holds the same rows in the same order (the same sequences and positions, committed
// at the same boundaries), so readers opened with the same options yield the same tokens batch for
// batch: what a transcoder (input hook -> target hook) and one training run per hook rely on.
#include <filesystem>
#include <string>
#include <vector>

#include "saelab/core/options.hpp"

namespace saelab {

struct SourceInfo;
class ActivationStore;

// "blocks.*.hook_resid_post" -> the source's hooks it matches; '*' matches any run of characters
// other than '.'. A name without '*' must be a hook of `available`. Sorted by layer, then name,
// without duplicates. Fails on `key` (naming the pattern and some available hooks) when a pattern
// matches nothing.
std::vector<std::string> match_hooks(const std::vector<std::string>& patterns,
                                     const std::vector<std::string>& available, const Options& o,
                                     const std::string& key);

// The hooks harvest captures: harvest.hooks expanded over the source's hooks, else [harvest.hook].
std::vector<std::string> harvest_hooks(const Options& o, const SourceInfo& info);
// True when the harvest writes one store per hook (harvest.hooks is set).
bool multi_hook_harvest(const Options& o);

// The store of `hook` under store_dir: store_dir itself for a one-hook store (whose hook must be
// `hook`, or `hook` empty), store_dir/<hook> for a multi-hook one. Throws UsageError naming the
// hooks the store has when `hook` is not among them.
std::filesystem::path hook_store_dir(ActivationStore& store, const std::filesystem::path& store_dir,
                                     const std::string& hook);
// The hooks a store directory holds: its own for a one-hook store, else every sub-store's.
std::vector<std::string> stored_hooks(ActivationStore& store, const std::filesystem::path& store_dir);

}  // namespace saelab
