#include "saelab/formats/hub.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <string_view>
#include <vector>

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/sha256.hpp"

namespace saelab::hub {
namespace fs = std::filesystem;
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// ---- HTTP through libcurl ------------------------------------------------------------------

struct Response {
  long status = 0;
  CURLcode code = CURLE_OK;
  std::string error;                           // curl's message when code != CURLE_OK
  std::map<std::string, std::string> headers;  // of the final response, names lowercased
  std::string body;                            // when no file sink was given, or an error body
};

struct Sink {
  std::FILE* file = nullptr;  // null: collect into Response::body
  std::uint64_t offset = 0;   // bytes already in `file` (the Range start)
  bool decided = false;       // whether the final status has been seen
  Response* resp = nullptr;
  CURL* curl = nullptr;
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* resp = static_cast<Response*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) resp->headers.clear();  // a new response in a redirect chain
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string key = line.substr(0, colon), value = line.substr(colon + 1);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    const auto b = value.find_first_not_of(" \t"), e = value.find_last_not_of(" \t\r\n");
    resp->headers[key] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  }
  return size * n;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t bytes = size * n;
  if (!sink->decided) {
    sink->decided = true;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &sink->resp->status);
    if (sink->file && sink->resp->status == 200 && sink->offset > 0) {
      // The server ignored the Range request: start the file over.
      if (std::fflush(sink->file) != 0 || ::ftruncate(::fileno(sink->file), 0) != 0) return 0;
      std::rewind(sink->file);
      sink->offset = 0;
    }
  }
  const long st = sink->resp->status;
  if (!sink->file || (st != 200 && st != 206)) {
    if (sink->resp->body.size() < (1 << 20)) sink->resp->body.append(data, bytes);
    return bytes;
  }
  return std::fwrite(data, 1, bytes, sink->file);
}

struct Progress {
  const FetchOptions* options;
  std::string name;
  std::uint64_t offset;
};

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* p = static_cast<Progress*>(user);
  if (p->options->progress && total > 0)
    p->options->progress(p->name, p->offset + static_cast<std::uint64_t>(now),
                         p->offset + static_cast<std::uint64_t>(total));
  return 0;
}

Response http_get(const std::string& url, const FetchOptions& opt, std::FILE* file, std::uint64_t offset,
                  Progress* progress) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw Error("hub: libcurl could not create a handle");
  Response resp;
  Sink sink{file, offset, false, &resp, curl.get()};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  const std::string token = opt.token.empty() ? env("HF_TOKEN") : opt.token;
  // libcurl drops custom Authorization headers when a redirect leaves the host (the CDN).
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  headers = curl_slist_append(headers, "Accept-Encoding: identity");
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "saelab/0.1");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opt.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opt.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  if (offset > 0) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(offset));
  if (progress) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, progress);
  }
  resp.code = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (resp.status == 0) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  if (resp.code != CURLE_OK) resp.error = errbuf[0] ? errbuf : curl_easy_strerror(resp.code);
  return resp;
}

// A repository or revision name: starts with a letter or digit, then letters, digits, '.', '_',
// '-' (and '/' in revisions), no "..", at most max_len characters.
bool valid_name(const std::string& s, std::size_t max_len, bool allow_slash) {
  if (s.empty() || s.size() > max_len || !std::isalnum(static_cast<unsigned char>(s[0])) ||
      s.find("..") != std::string::npos)
    return false;
  return std::all_of(s.begin(), s.end(), [&](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-' ||
           (allow_slash && ch == '/');
  });
}

bool unreachable(CURLcode code) {
  return code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY ||
         code == CURLE_COULDNT_CONNECT || code == CURLE_OPERATION_TIMEDOUT || code == CURLE_SSL_CONNECT_ERROR;
}

// ---- what the hub lists ---------------------------------------------------------------------

struct RemoteFile {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;   // LFS files
  std::string git_oid;  // files kept in git: SHA-1 blob id
};

std::string hex(const unsigned char* md, unsigned int len) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(digits[md[i] >> 4]);
    out.push_back(digits[md[i] & 15]);
  }
  return out;
}

// git's blob id: SHA-1 over "blob <size>\0" followed by the content.
std::string git_blob_sha1(const fs::path& path) {
  const std::string data = read_file(path, 64u << 20, "downloaded file");
  const std::string head = "blob " + std::to_string(data.size()) + std::string(1, '\0');
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha1(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), head.data(), head.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), md, &len) != 1)
    throw Error("hub: OpenSSL SHA-1 failed");
  return hex(md, len);
}

std::string manual_steps(const std::string& repo, const FetchOptions& opt, const fs::path& dir) {
  return cat("To place the files by hand: on a machine with network access download ",
             "config.json and model.safetensors from https://huggingface.co/", repo, "/tree/", opt.revision,
             " and copy them into ", dir.string(),
             " (or into any directory and set the gpt2 source's `model:` option to it). "
             "Set SAELAB_CACHE to use another cache directory");
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string names_of(const std::map<std::string, RemoteFile>& remote, std::string_view suffix = "") {
  std::string out;
  for (const auto& [n, f] : remote)
    if (ends_with(n, suffix)) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The files to fetch: options.files (all required) and whichever optional files are listed. A
// repository of GGUF files (llama.cpp's format) has no model.safetensors; with the default file
// list its one .gguf file is taken instead, and when it holds several (one per quantization) the
// caller must name one, since they differ by gigabytes.
std::vector<const RemoteFile*> wanted_files(const std::map<std::string, RemoteFile>& remote,
                                            const FetchOptions& options, const std::string& repo) {
  std::vector<const RemoteFile*> wanted;
  const bool default_files = options.files == FetchOptions{}.files;
  if (default_files && remote.count("model.safetensors") == 0) {
    std::vector<const RemoteFile*> gguf;
    for (const auto& [n, f] : remote)
      if (ends_with(n, ".gguf")) gguf.push_back(&f);
    if (gguf.size() == 1) return gguf;
    if (gguf.size() > 1)
      throw Error(cat("hub: ", repo, " has no model.safetensors but ", gguf.size(),
                      " GGUF files: ", names_of(remote, ".gguf"), ". Choose one: saelab fetch-model ", repo,
                      " --file ", gguf.front()->name));
  }
  for (const auto& name : options.files) {
    auto it = remote.find(name);
    if (it == remote.end())
      throw Error(cat("hub: ", repo, " has no ", name, " (it has: ", names_of(remote), ").",
                      name == "model.safetensors"
                          ? " saelab loads only safetensors or GGUF weights, never pickled .bin files"
                          : ""));
    wanted.push_back(&it->second);
  }
  for (const auto& name : options.optional_files)
    if (auto it = remote.find(name); it != remote.end()) wanted.push_back(&it->second);
  return wanted;
}

std::string encode_revision(const std::string& rev) {
  std::string out;
  for (char ch : rev) out += ch == '/' ? std::string("%2F") : std::string(1, ch);
  return out;
}

std::map<std::string, RemoteFile> list_repo(const std::string& endpoint, const std::string& repo,
                                            const FetchOptions& opt, const fs::path& dir) {
  const std::string url = cat(endpoint, "/api/models/", repo, "/tree/", encode_revision(opt.revision));
  const Response r = http_get(url, opt, nullptr, 0, nullptr);
  if (r.code != CURLE_OK)
    throw Error(cat("hub: cannot reach ", endpoint, " (", r.error, "; gave up after ", opt.connect_timeout_s,
                    " s at most). `saelab fetch-model` needs network access. ",
                    manual_steps(repo, opt, dir)));
  if (r.status == 401 || r.status == 403 || r.status == 404)
    throw Error(cat("hub: ", url, " answered HTTP ", r.status, ": repository '", repo, "' or revision '",
                    opt.revision, "' not found, or it is gated/private (set ",
                    "HF_TOKEN to a token that may read it)"));
  SAELAB_CHECK(r.status == 200, Error, "hub: ", url, " answered HTTP ", r.status, ": ",
               r.body.substr(0, 200));
  std::map<std::string, RemoteFile> out;
  try {
    const auto j = nlohmann::json::parse(r.body);
    for (const auto& e : j) {
      if (e.value("type", "") != "file") continue;
      RemoteFile f;
      f.name = e.at("path").get<std::string>();
      f.size = e.at("size").get<std::uint64_t>();
      f.git_oid = e.value("oid", "");
      if (e.contains("lfs") && e["lfs"].is_object()) {
        f.sha256 = e["lfs"].at("oid").get<std::string>();
        f.size = e["lfs"].value("size", f.size);
      }
      out[f.name] = f;
    }
  } catch (const nlohmann::json::exception& ex) {
    throw FormatError(
        cat("hub: the file listing from ", url, " is not what the hub sends (", ex.what(), ")"));
  }
  return out;
}

// True when `path` already holds exactly the remote file.
bool verified(const fs::path& path, const RemoteFile& f, std::string* sha) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) != f.size) return false;
  if (!f.sha256.empty()) {
    *sha = file_sha256_cached(path);
    return *sha == f.sha256;
  }
  if (git_blob_sha1(path) != f.git_oid) return false;
  *sha = file_sha256_cached(path);
  return true;
}

void download(const std::string& endpoint, const std::string& repo, const RemoteFile& f,
              const FetchOptions& opt, const fs::path& dir) {
  const fs::path part = dir / (f.name + ".incomplete");
  std::error_code ec;
  std::uint64_t have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
  if (have > f.size) {  // not a prefix of this file: start over
    fs::remove(part, ec);
    have = 0;
  }
  if (have < f.size || f.size == 0) {
    std::FILE* out = std::fopen(part.c_str(), have > 0 ? "ab" : "wb");
    if (!out) throw Error(cat("hub: cannot write '", part.string(), "'"));
    const std::string url = cat(endpoint, "/", repo, "/resolve/", encode_revision(opt.revision), "/", f.name);
    Progress progress{&opt, f.name, have};
    const Response r = http_get(url, opt, out, have, &progress);
    const bool closed = std::fclose(out) == 0;
    const std::uint64_t now = fs::file_size(part, ec);
    if (r.code != CURLE_OK)
      throw Error(cat("hub: download of ", f.name, " from ", url, " stopped after ", now, " of ", f.size,
                      " bytes (", r.error, "). Run the same command again to resume. ",
                      unreachable(r.code) ? manual_steps(repo, opt, dir) : std::string()));
    SAELAB_CHECK(r.status == 200 || r.status == 206, Error, "hub: ", url, " answered HTTP ", r.status, ": ",
                 r.body.substr(0, 200));
    SAELAB_CHECK(closed, Error, "hub: writing '", part.string(), "' failed (disk full?)");
  }
  const std::uint64_t size = fs::file_size(part, ec);
  std::string sha;
  if (!verified(part, f, &sha)) {
    const bool lfs = !f.sha256.empty();
    const std::string got = lfs ? sha256_file(part) : git_blob_sha1(part);
    fs::remove(part, ec);
    fs::remove(fs::path(part.string() + ".sha256"), ec);
    throw FormatError(cat("hub: ", f.name, " from ", repo, " does not match the hub's listing: ", size,
                          " bytes (expected ", f.size, "), ", lfs ? "SHA-256 " : "git blob id ", got,
                          " (expected ", lfs ? f.sha256 : f.git_oid,
                          "). The partial file was deleted; run the command again"));
  }
  fsync_file(part);
  rename_durable(part, dir / f.name);
  fs::rename(fs::path(part.string() + ".sha256"), dir / (f.name + ".sha256"), ec);
}

// Holds an exclusive lock on the model directory so two fetches do not write the same file.
class DirLock {
 public:
  explicit DirLock(const fs::path& dir) {
    const fs::path p = dir / ".fetch.lock";
    fd_ = ::open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) throw Error(cat("hub: cannot lock '", p.string(), "'"));
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

fs::path cache_root() {
  if (auto v = env("SAELAB_CACHE"); !v.empty()) return v;
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "saelab";
  if (auto v = env("HOME"); !v.empty()) return fs::path(v) / ".cache" / "saelab";
  throw ConfigError("hub: neither SAELAB_CACHE nor HOME is set; set SAELAB_CACHE to a directory");
}

std::string canonical_repo(const std::string& repo_id) {
  static const char* legacy[] = {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2"};
  for (const char* name : legacy)
    if (repo_id == name) return std::string("openai-community/") + name;
  const auto slash = repo_id.find('/');
  const bool ok = slash == std::string::npos ? valid_name(repo_id, 96, false)
                                             : valid_name(repo_id.substr(0, slash), 96, false) &&
                                                   valid_name(repo_id.substr(slash + 1), 96, false);
  SAELAB_CHECK(ok, ConfigError, "hub: '", repo_id.substr(0, 200),
               "' is not a Hugging Face model id; expected 'org/name' (letters, digits, '-', '_', "
               "'.') or one of gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2");
  return repo_id;
}

fs::path model_dir(const std::string& repo_id, const std::string& revision, const fs::path& cache) {
  std::string dir = canonical_repo(repo_id);
  const auto slash = dir.find('/');
  if (slash != std::string::npos) dir = dir.substr(0, slash) + "--" + dir.substr(slash + 1);
  if (revision != "main") {
    std::string rev = revision;
    std::replace(rev.begin(), rev.end(), '/', '_');
    dir += "@" + rev;
  }
  return (cache.empty() ? cache_root() : cache) / "models" / dir;
}

FetchResult fetch_model(const std::string& repo_id, const FetchOptions& options) {
  SAELAB_CHECK(valid_name(options.revision, 128, true), ConfigError, "hub: revision '",
               options.revision.substr(0, 200), "' is not a branch, tag or commit name");
  FetchResult result;
  result.repo = canonical_repo(repo_id);
  result.dir = model_dir(result.repo, options.revision, options.cache);
  std::string endpoint = options.endpoint.empty() ? env("HF_ENDPOINT") : options.endpoint;
  if (endpoint.empty()) endpoint = "https://huggingface.co";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();

  fs::create_directories(result.dir);
  DirLock lock(result.dir);
  const auto remote = list_repo(endpoint, result.repo, options, result.dir);
  const std::vector<const RemoteFile*> wanted = wanted_files(remote, options, result.repo);
  for (const RemoteFile* f : wanted) {
    SAELAB_CHECK(f->name.find('/') == std::string::npos && f->name.find("..") == std::string::npos,
                 FormatError, "hub: refusing file name '", f->name, "' from the listing");
    FetchedFile out{f->name, result.dir / f->name, f->size, "", false};
    if (!verified(out.path, *f, &out.sha256)) {
      download(endpoint, result.repo, *f, options, result.dir);
      out.sha256 = file_sha256_cached(out.path);
      out.downloaded = true;
    }
    result.files.push_back(out);
  }
  return result;
}

std::string file_sha256_cached(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) throw Error(cat("cannot read '", path.string(), "': ", ec.message()));
  const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
  const std::string stamp = cat(size, " ", mtime);
  const fs::path side = path.string() + ".sha256";
  {
    std::ifstream in(side);
    std::string sha, rest;
    if (in >> sha && std::getline(in, rest) && rest == " " + stamp && sha.size() == 64) return sha;
  }
  std::string sha = sha256_file(path);
  try {
    write_file_atomic(side, sha + " " + stamp + "\n");
  } catch (const Error&) {
    // A read-only model directory only costs hashing again next time.
  }
  return sha;
}

}  // namespace saelab::hub
