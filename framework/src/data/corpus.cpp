// Corpus reading and sequence packing (format and semantics in saelab/data/corpus.hpp).
#include "saelab/data/corpus.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/sha256.hpp"
#include "saelab/core/utf8.hpp"

namespace saelab {

namespace fs = std::filesystem;

namespace {

// A text file is one document, held in memory with its tokens while it is packed.
constexpr std::uintmax_t kMaxDocumentBytes = 256ull << 20;

struct CorpusFile {
  fs::path path;
  std::string name;  // as it enters the fingerprint
  bool jsonl = false;
};

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

bool is_jsonl_name(const fs::path& p) {
  const std::string ext = lower_extension(p);
  return ext == ".jsonl" || ext == ".ndjson";
}

bool is_text_name(const fs::path& p) {
  const std::string ext = lower_extension(p);
  return ext == ".txt" || ext == ".text" || ext == ".md";
}

void add_directory(const fs::path& root, const std::string& format, std::vector<CorpusFile>& out) {
  std::vector<CorpusFile> found;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, ec), end;
  if (ec) throw ConfigError(cat("cannot list corpus directory '", root.string(), "': ", ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) throw ConfigError(cat("cannot list corpus directory '", root.string(), "': ", ec.message()));
    const fs::path& p = it->path();
    if (p.filename().string().rfind('.', 0) == 0) {  // hidden: .git, .DS_Store, editor files
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    const bool jsonl = format == "jsonl" || (format == "auto" && is_jsonl_name(p));
    if (format == "auto" && !jsonl && !is_text_name(p)) continue;
    found.push_back(CorpusFile{p, p.lexically_relative(root).generic_string(), jsonl});
  }
  std::sort(found.begin(), found.end(),
            [](const CorpusFile& a, const CorpusFile& b) { return a.name < b.name; });
  out.insert(out.end(), found.begin(), found.end());
}

std::vector<CorpusFile> list_files(const CorpusConfig& cfg) {
  if (cfg.format != "auto" && cfg.format != "text" && cfg.format != "jsonl")
    throw ConfigError(cat("corpus format '", cfg.format, "' is not one of: auto, text, jsonl"));
  if (cfg.paths.empty()) throw ConfigError("corpus: no paths given (corpus.paths is empty)");
  std::vector<CorpusFile> files;
  for (const fs::path& p : cfg.paths) {
    std::error_code ec;
    const fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) throw ConfigError(cat("corpus path '", p.string(), "' does not exist"));
    if (fs::is_directory(st)) {
      add_directory(p, cfg.format, files);
    } else {
      const bool jsonl = cfg.format == "jsonl" || (cfg.format == "auto" && is_jsonl_name(p));
      files.push_back(CorpusFile{p, p.filename().string(), jsonl});
    }
  }
  if (files.empty()) {
    std::string listed;
    for (const fs::path& p : cfg.paths) listed += (listed.empty() ? "'" : ", '") + p.string() + "'";
    throw ConfigError(cat("corpus: no files to read under ", listed,
                          (cfg.format == "auto" ? " (format auto reads *.txt, *.text, *.md, *.jsonl, "
                                                  "*.ndjson; set corpus.format to read others)"
                                                : "")));
  }
  return files;
}

const char* json_type(const nlohmann::json& j) {
  return j.type_name();
}

}  // namespace

struct CorpusDocuments::Impl {
  CorpusConfig config;
  std::vector<CorpusFile> files;
  std::size_t next_file = 0;  // the next file to open
  std::ifstream jsonl;        // open while a JSONL file is being read
  const CorpusFile* jsonl_file = nullptr;
  std::int64_t line_no = 0;
  mutable std::string fingerprint;

  bool next_jsonl_document(std::string& doc);
};

namespace {
// std::getline that refuses a line over kMaxDocumentBytes instead of growing without bound (a
// corpus with no newline at all would otherwise be read whole into one string).
bool read_bounded_line(std::istream& in, std::string& line, const std::string& name, std::int64_t line_no) {
  line.clear();
  std::streambuf* sb = in.rdbuf();
  bool any = false;
  for (int ch = sb->sbumpc(); ch != std::char_traits<char>::eof(); ch = sb->sbumpc()) {
    any = true;
    if (ch == '\n') return true;
    if (line.size() >= kMaxDocumentBytes)
      throw FormatError(cat(name, ":", line_no, ": the line is longer than ", kMaxDocumentBytes,
                            " bytes (256 MiB), the limit for one JSONL document"));
    line.push_back(static_cast<char>(ch));
  }
  return any;
}
}  // namespace

bool CorpusDocuments::Impl::next_jsonl_document(std::string& doc) {
  const std::string& name = jsonl_file->path.string();
  std::string line;
  while (read_bounded_line(jsonl, line, name, line_no + 1)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const auto where = [&] { return cat(name, ":", line_no, ": "); };
    const std::size_t valid = utf8_valid_prefix(line);
    if (valid != line.size())
      throw FormatError(cat(where(), "not valid UTF-8 (byte ", valid + 1,
                            " of the line); JSONL corpora must be UTF-8 (use format text for "
                            "other encodings)"));
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
      throw FormatError(cat(where(), "not valid JSON (", e.what(),
                            "); each line must be one JSON object with a string field \"", config.text_field,
                            "\""));
    }
    if (!j.is_object())
      throw FormatError(cat(where(), "the line is a JSON ", json_type(j),
                            ", not an object with a string field \"", config.text_field, "\""));
    const auto field = j.find(config.text_field);
    if (field == j.end()) {
      std::string keys;
      for (const auto& kv : j.items()) keys += (keys.empty() ? "" : ", ") + kv.key();
      throw FormatError(cat(where(), "no field \"", config.text_field,
                            "\" (the fields are: ", keys.empty() ? "none" : keys,
                            "); set corpus.text_field to the field "
                            "holding the text"));
    }
    if (!field->is_string())
      throw FormatError(
          cat(where(), "field \"", config.text_field, "\" is a ", json_type(*field), "; expected a string"));
    doc = field->get<std::string>();
    if (!doc.empty()) return true;
  }
  if (jsonl.bad()) throw Error(cat("read error in corpus file '", name, "' after line ", line_no));
  jsonl.close();
  jsonl_file = nullptr;
  return false;
}

CorpusDocuments::CorpusDocuments(CorpusConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->files = list_files(impl_->config);
}

CorpusDocuments::~CorpusDocuments() = default;

bool CorpusDocuments::next(CorpusDocument& out) {
  Impl& m = *impl_;
  std::string& doc = out.text;
  for (;;) {
    if (m.jsonl_file) {
      const CorpusFile* f = m.jsonl_file;
      if (m.next_jsonl_document(doc)) {
        out.file = f->name;
        out.line = m.line_no;
        return true;
      }
      continue;
    }
    if (m.next_file >= m.files.size()) return false;
    const CorpusFile& f = m.files[m.next_file++];
    if (f.jsonl) {
      m.jsonl.clear();
      m.jsonl.open(f.path, std::ios::binary);
      if (!m.jsonl) throw Error(cat("cannot open corpus file '", f.path.string(), "'"));
      m.jsonl_file = &f;
      m.line_no = 0;
      continue;
    }
    std::error_code ec;
    const std::uintmax_t size = fs::file_size(f.path, ec);
    if (!ec && size > kMaxDocumentBytes)
      throw FormatError(cat("corpus file '", f.path.string(), "' is ", size,
                            " bytes; a text file is "
                            "one document and may hold at most ",
                            kMaxDocumentBytes,
                            " bytes. Split it into several files or use JSONL (one document a line)"));
    doc = read_file(f.path, kMaxDocumentBytes, "corpus file");
    if (!doc.empty()) {
      out.file = f.name;
      out.line = 0;
      return true;
    }
  }
}

std::vector<std::int32_t> document_tokens(std::string_view text, const ActivationSource& source,
                                          bool allow_special_tokens) {
  const std::int32_t eos = source.info().eos_token;
  const std::string eos_text = allow_special_tokens && eos >= 0 ? source.decode({eos}) : std::string();
  std::vector<std::int32_t> out;
  for (;;) {
    const std::size_t hit = eos_text.empty() ? std::string::npos : text.find(eos_text);
    const std::vector<std::int32_t> ids = source.tokenize(text.substr(0, hit));
    out.insert(out.end(), ids.begin(), ids.end());
    if (hit == std::string::npos) return out;
    out.push_back(eos);
    text.remove_prefix(hit + eos_text.size());
  }
}

struct TokenBatches::Impl {
  CorpusConfig config;
  const ActivationSource& source;
  CorpusDocuments documents;
  std::int32_t bos = -1;
  std::int32_t eos = -1;
  std::int64_t body = 0;  // stream tokens per sequence (context_size minus the BOS)

  bool any_document = false;  // an EOS goes before every document but the first
  std::vector<std::int32_t> pending;
  std::size_t pending_pos = 0;
  std::int64_t emitted = 0;

  Impl(CorpusConfig c, const ActivationSource& s) : config(c), source(s), documents(std::move(c)) {}

  void append_tokens(const std::string& doc);
  bool fill();  // makes `body` tokens available; false when the corpus has run out
};

void TokenBatches::Impl::append_tokens(const std::string& doc) {
  if (any_document && eos >= 0) pending.push_back(eos);
  any_document = true;
  const std::vector<std::int32_t> ids = document_tokens(doc, source, config.allow_special_tokens);
  pending.insert(pending.end(), ids.begin(), ids.end());
}

bool TokenBatches::Impl::fill() {
  const auto need = static_cast<std::size_t>(body);
  CorpusDocument doc;
  while (pending.size() - pending_pos < need) {
    if (pending_pos > 0) {  // drop what has been emitted before growing
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(pending_pos));
      pending_pos = 0;
    }
    if (!documents.next(doc)) return false;
    append_tokens(doc.text);
  }
  return true;
}

TokenBatches::TokenBatches(CorpusConfig config, const ActivationSource& source)
    : impl_(std::make_unique<Impl>(std::move(config), source)) {
  Impl& m = *impl_;
  const SourceInfo& info = source.info();
  const std::int64_t min_context = m.config.prepend_bos ? 2 : 1;
  if (m.config.context_size < min_context)
    throw ConfigError(cat("corpus.context_size is ", m.config.context_size, "; it must be at least ",
                          min_context, m.config.prepend_bos ? " (BOS plus one token)" : ""));
  if (info.max_context > 0 && m.config.context_size > info.max_context)
    throw ConfigError(cat("corpus.context_size is ", m.config.context_size, " but model '", info.model_id,
                          "' accepts at most ", info.max_context, " tokens"));
  if (m.config.prepend_bos && info.bos_token < 0)
    throw ConfigError(cat("corpus.prepend_bos is set but model '", info.model_id,
                          "' has no BOS token; set corpus.prepend_bos to false"));
  m.bos = info.bos_token;
  m.eos = info.eos_token;
  m.body = m.config.context_size - (m.config.prepend_bos ? 1 : 0);
}

TokenBatches::~TokenBatches() = default;

torch::Tensor TokenBatches::next(std::int64_t n) {
  Impl& m = *impl_;
  const std::int64_t ctx = m.config.context_size;
  std::vector<std::int64_t> rows;
  std::int64_t count = 0;
  while (count < n && m.fill()) {
    if (m.config.prepend_bos) rows.push_back(m.bos);
    const std::int32_t* src = m.pending.data() + m.pending_pos;
    rows.insert(rows.end(), src, src + m.body);
    m.pending_pos += static_cast<std::size_t>(m.body);
    ++count;
  }
  m.emitted += count;
  torch::Tensor out = torch::empty({count, ctx}, torch::kInt64);
  if (count > 0) std::memcpy(out.data_ptr<std::int64_t>(), rows.data(), rows.size() * sizeof(std::int64_t));
  return out;
}

std::int64_t TokenBatches::sequences_emitted() const {
  return impl_->emitted;
}

void TokenBatches::skip(std::int64_t sequences) {
  Impl& m = *impl_;
  for (std::int64_t i = 0; i < sequences && m.fill(); ++i) {
    m.pending_pos += static_cast<std::size_t>(m.body);
    ++m.emitted;
  }
}

std::string TokenBatches::fingerprint() const {
  return impl_->documents.fingerprint();
}

std::string CorpusDocuments::fingerprint() const {
  if (!impl_->fingerprint.empty()) return impl_->fingerprint;
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (const CorpusFile& f : impl_->files) {
    std::ifstream in(f.path, std::ios::binary);
    if (!in) throw Error(cat("cannot open corpus file '", f.path.string(), "'"));
    std::error_code ec;
    const std::uintmax_t size = fs::file_size(f.path, ec);
    if (ec) throw Error(cat("cannot stat corpus file '", f.path.string(), "': ", ec.message()));
    h.update(f.name);
    h.update(std::string_view("\0", 1));
    h.update(std::to_string(size));
    h.update(std::string_view("\0", 1));
    std::uintmax_t total = 0;
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
      h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
      total += static_cast<std::uintmax_t>(in.gcount());
    }
    if (in.bad() || total != size)
      throw Error(cat("corpus file '", f.path.string(), "' changed while being fingerprinted"));
  }
  impl_->fingerprint = h.hex_digest();
  return impl_->fingerprint;
}

const CorpusConfig& TokenBatches::config() const {
  return impl_->config;
}

}  // namespace saelab
