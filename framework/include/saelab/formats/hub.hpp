#pragma once
// Downloading model files from the Hugging Face hub (what `saelab fetch-model` runs).
//
// Protocol (the hub's public HTTP API, as huggingface_hub uses it):
//   GET {endpoint}/api/models/{repo}/tree/{revision}
//       -> JSON array of {"type": "file", "path", "size", "oid", "lfs": {"oid", "size"}?}
//       For files stored in git LFS (weights) lfs.oid is the SHA-256 of the content; for small
//       files stored in git (config.json) oid is the git blob id: SHA-1 of "blob <size>\0<content>".
//   GET {endpoint}/{repo}/resolve/{revision}/{file}
//       -> the content, usually after a redirect to a CDN; `Range: bytes=N-` resumes.
//
// Cache layout: {cache}/models/{org}--{name}/{file}   (revision "main"; others add "@{rev}")
//   {file}.incomplete    partial download, resumed by the next fetch
//   {file}.sha256        "<sha256 hex> <size> <mtime ns>": the verified hash, so a loader need not
//                        hash a multi-GB file again (see file_sha256_cached)
// A file appears under its final name only after its size and hash matched the hub's listing.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "saelab/core/export.hpp"

namespace saelab::hub {

// $SAELAB_CACHE, else $XDG_CACHE_HOME/saelab, else $HOME/.cache/saelab.
SAELAB_API std::filesystem::path cache_root();

// "gpt2" -> "openai-community/gpt2" (likewise gpt2-medium, -large, -xl, distilgpt2); "org/name"
// is returned unchanged. Throws ConfigError for a malformed id.
SAELAB_API std::string canonical_repo(const std::string& repo_id);

// Where fetch_model puts a repository's files.
SAELAB_API std::filesystem::path model_dir(const std::string& repo_id, const std::string& revision = "main",
                                           const std::filesystem::path& cache = {});

struct SAELAB_API FetchOptions {
  std::string endpoint;  // "" -> $HF_ENDPOINT, else https://huggingface.co
  std::string revision = "main";
  std::filesystem::path cache;  // "" -> cache_root()
  // With these defaults a repository without model.safetensors but with exactly one *.gguf file
  // gives that file alone; with several GGUF files fetch_model asks (Error) for one to be named.
  std::vector<std::string> files = {"config.json", "model.safetensors"};
  std::vector<std::string> optional_files = {"vocab.json", "merges.txt"};  // taken when present
  long connect_timeout_s = 10;  // no network -> fail after this long, not minutes later
  long stall_timeout_s = 60;    // abort a transfer that moved no byte for this long
  std::string token;            // "" -> $HF_TOKEN (for gated or private repositories)
  // Called while downloading: file name, bytes so far, total bytes.
  std::function<void(const std::string&, std::uint64_t, std::uint64_t)> progress;
};

struct SAELAB_API FetchedFile {
  std::string name;
  std::filesystem::path path;
  std::uint64_t size = 0;
  std::string sha256;
  bool downloaded = false;  // false: already in the cache and verified
};

struct SAELAB_API FetchResult {
  std::string repo;  // canonical id
  std::filesystem::path dir;
  std::vector<FetchedFile> files;
};

// Downloads (or finds in the cache) the files of a model repository. Throws Error with what to do
// when the hub cannot be reached (including how to place the files by hand), FormatError when a
// download does not match the hub's checksum.
SAELAB_API FetchResult fetch_model(const std::string& repo_id, const FetchOptions& options = {});

// SHA-256 of a file, remembered in "<file>.sha256" beside it together with the file's size and
// modification time; recomputed (and rewritten when the directory is writable) when they differ.
SAELAB_API std::string file_sha256_cached(const std::filesystem::path& path);

}  // namespace saelab::hub
