// DocumentStream of monitor.hpp: documents from text (blank-line separated) or JSONL, in bounded memory.
#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/steer/monitor.hpp"

namespace saelab {
namespace {

// Where to cut s so that no UTF-8 sequence is split: s.size() moved back over continuation bytes.
std::size_t utf8_boundary(const std::string& s) {
  std::size_t cut = s.size();
  while (cut > 0 && s.size() - cut < 4 && (static_cast<unsigned char>(s[cut - 1]) & 0xC0) == 0x80) --cut;
  if (cut > 0 && (static_cast<unsigned char>(s[cut - 1]) & 0xC0) == 0xC0) --cut;  // a lead byte
  return cut == 0 ? s.size() : cut;
}

}  // namespace

DocumentStream::DocumentStream(std::istream& in, std::string format, std::string name, std::string text_field,
                               std::size_t max_document_bytes)
    : in_(in),
      format_(std::move(format)),
      name_(std::move(name)),
      field_(std::move(text_field)),
      max_bytes_(max_document_bytes) {
  SAELAB_CHECK(
      format_ == "text" || format_ == "jsonl", UsageError, "input format '", format_,
      "' is not one of: text (documents separated by blank lines), jsonl (one JSON object per line)");
  SAELAB_CHECK(max_bytes_ >= 16, UsageError, "the document size limit must be at least 16 bytes");
}

bool DocumentStream::read_line(std::string& line, bool& partial) {
  line.swap(leftover_);
  leftover_.clear();
  partial = false;
  int ch = 0;
  while ((ch = in_.get()) != EOF) {
    if (ch == '\n') {
      ++line_;
      return true;
    }
    line.push_back(static_cast<char>(ch));
    if (line.size() >= max_bytes_) {
      const std::size_t cut = utf8_boundary(line);
      leftover_ = line.substr(cut);
      line.resize(cut);
      partial = true;
      return true;
    }
  }
  if (!line.empty()) ++line_;
  return !line.empty();
}

bool DocumentStream::next(StreamDocument& doc) {
  return format_ == "text" ? next_text(doc) : next_jsonl(doc);
}

bool DocumentStream::next_text(StreamDocument& doc) {
  doc.text.clear();
  doc.continued = continuing_;
  std::string line;
  bool partial = false, cut = false;
  while (read_line(line, partial)) {
    if (line.empty() && !partial) {
      if (doc.text.empty()) continue;  // runs of blank lines
      break;
    }
    doc.text += line;
    if (!partial) doc.text += '\n';
    if (partial || doc.text.size() >= max_bytes_) {
      cut = true;
      break;
    }
  }
  continuing_ = cut;
  if (doc.text.empty()) return false;
  if (!doc.continued) doc.id = docs_++;
  return true;
}

bool DocumentStream::next_jsonl(StreamDocument& doc) {
  std::string line, rest;
  bool partial = false;
  while (read_line(line, partial)) {
    const std::int64_t at = line_ + (partial ? 1 : 0);
    if (partial) {
      while (partial && read_line(rest, partial)) {
      }
      log::warn(name_, ":", at, ": the record is longer than ", max_bytes_, " bytes; skipped");
      ++bad_;
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains(field_) || !j[field_].is_string()) {
      log::warn(name_, ":", at, ": ",
                j.is_discarded() ? "not valid JSON" : "not an object with a string '" + field_ + "'",
                "; skipped");
      ++bad_;
      continue;
    }
    doc.text = j[field_].get<std::string>();
    doc.id = j.contains("id") ? j["id"] : nlohmann::json(docs_);
    doc.continued = false;
    ++docs_;
    return true;
  }
  return false;
}

}  // namespace saelab
