#pragma once
// The monitor: watched latents over a stream of documents, reporting where each fires above its
// threshold. Memory is bounded by the batch of pending windows, whatever the stream's length.
//
// Input (DocumentStream):
//   text   documents separated by blank lines
//   jsonl  one JSON object per line, the document in `text_field`, an optional "id" echoed back
// A text document longer than max_document_bytes is cut at a line end (a longer line at a UTF-8
// boundary) and the rest read as the next part of the same document. A JSONL line longer than the
// limit, or that is not an object with a string text field, is reported with its line number and
// skipped.
//
// Windows: a document's tokens are cut into windows of `window` tokens (BOS prepended when the
// model wants one), each run through the model to the hook and the SAE's encoder. The first
// `skip` model positions of a window (BOS and the attention sink, as the harvest left them out)
// are not evaluated, so consecutive windows overlap by that many tokens and every other token of
// the document is evaluated exactly once. Windows of several documents share a forward pass
// (right-padded; attention is causal, so padding changes nothing before it).
//
// Output: one JSON object per window in which a watched latent fired (every window with `all`):
//   {"doc": ID, "window": k, "tokens": [first, end), "fired": [{"latent": f, "threshold": t,
//    "max": m, "count": n, "hits": [{"pos": p, "token": "…", "activation": a,
//    "context": "…[[token]]…"}]}]}
// positions are token indices in the document.
#include <cstdint>
#include <functional>
#include <istream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/sae.hpp"
#include "saelab/steer/reference.hpp"

namespace saelab {

// --watch LATENT, LATENT:THRESHOLD or LATENT:qQUANTILE (default: qdefault_quantile).
struct SAELAB_API WatchSpec {
  std::int64_t latent = 0;
  double threshold = -1.0;  // >= 0 when given
  double quantile = -1.0;   // in [0, 1] when given
};
SAELAB_API WatchSpec parse_watch(const std::string& spec);

struct SAELAB_API WatchedLatent {
  std::int64_t latent = 0;
  double threshold = 0.0;  // fires when activation > threshold
  std::string origin;      // "given", or "q0.999 of 160,088 reference rows"
};

// Thresholds for every spec; quantiles need `reference` with the latents kept.
SAELAB_API std::vector<WatchedLatent> resolve_watches(const std::vector<WatchSpec>& specs,
                                                      double default_quantile,
                                                      const LatentReference* reference, std::int64_t d_sae);

struct SAELAB_API MonitorOptions {
  std::int64_t window = 128;        // tokens per window, BOS excluded
  std::int64_t skip = 0;            // model positions of each window left unevaluated
  std::int64_t batch = 8;           // windows per forward pass
  std::int64_t context_tokens = 8;  // each side of a hit
  std::int64_t max_hits = 16;       // listed per latent and window (count has them all)
  bool prepend_bos = false;
  bool all_windows = false;
  std::vector<std::int32_t> excluded_tokens;  // never evaluated (special tokens)
};

struct SAELAB_API MonitorStats {
  std::int64_t documents = 0, windows = 0, tokens = 0, fired_windows = 0, hits = 0;
  double model_seconds = 0.0;
};

struct SAELAB_API StreamDocument {
  nlohmann::json id;
  std::string text;
  bool continued = false;  // a further part of the previous document
};

using MonitorEmit = std::function<void(const nlohmann::json& line)>;

class SAELAB_API Monitor {
 public:
  Monitor(ActivationSource& source, SaeArchitecture& sae, std::string hook,
          std::vector<WatchedLatent> watched, MonitorOptions opts, MonitorEmit emit);
  // Queues a document, or a further part of the last one; runs a batch when enough is queued.
  void add(const StreamDocument& doc);
  void flush();  // runs what is queued
  const MonitorStats& stats() const { return stats_; }

 private:
  struct Window {
    nlohmann::json doc;
    std::int64_t index = 0;  // window number in the document
    std::int64_t first = 0;  // document index of content[0]
    std::vector<std::int32_t> content;
    std::vector<std::int32_t> before, after;  // up to context_tokens of the document around content
  };
  void run_batch();
  nlohmann::json window_result(const Window& w, const torch::Tensor& acts, std::int64_t offset);

  ActivationSource& source_;
  SaeArchitecture& sae_;
  std::string hook_;
  std::vector<WatchedLatent> watched_;
  MonitorOptions opts_;
  MonitorEmit emit_;
  std::int64_t eval_from_ = 0;            // first evaluated index of every window's content
  std::vector<std::int64_t> latent_ids_;  // watched_'s latents, in order
  std::vector<Window> pending_;
  // Continuing a document cut into parts: its next window number, the document index of the
  // part's first token, and the previous part's last tokens (so coverage continues over the cut).
  std::int64_t next_window_ = 0, doc_offset_ = 0;
  std::vector<std::int32_t> tail_;
  MonitorStats stats_;
};

class SAELAB_API DocumentStream {
 public:
  // format: "text" | "jsonl"; `name` is used in warnings ("stdin", a path).
  DocumentStream(std::istream& in, std::string format, std::string name, std::string text_field = "text",
                 std::size_t max_document_bytes = std::size_t(1) << 20);
  bool next(StreamDocument& doc);  // false at the end
  std::int64_t bad_records() const { return bad_; }

 private:
  // A line without its '\n', at most max_bytes long; `partial` when the line goes on. False at the end.
  bool read_line(std::string& line, bool& partial);
  bool next_text(StreamDocument& doc);
  bool next_jsonl(StreamDocument& doc);

  std::istream& in_;
  std::string format_, name_, field_;
  std::size_t max_bytes_;
  std::int64_t line_ = 0, docs_ = 0, bad_ = 0;
  bool continuing_ = false;  // the last text document was cut; the next part continues it
  std::string leftover_;     // bytes of a cut line after its UTF-8 boundary
};

}  // namespace saelab
