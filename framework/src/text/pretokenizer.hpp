#pragma once
// Internal: the pre-tokenizers of bpe_tokenizer.hpp over one well-formed UTF-8 run, through PCRE2
// (JIT when the library has it). \s is spelled out as Unicode White_Space ([\t-\r \x85\p{Z}])
// because PCRE2's own \s also takes U+180E, which Oniguruma (HF) and Rust's regex (tiktoken) do
// not.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "saelab/text/bpe_tokenizer.hpp"

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

namespace saelab::text::detail {

class PreTokenizer {
 public:
  explicit PreTokenizer(PreTokenizerKind kind = PreTokenizerKind::Gpt2);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Calls emit(piece) for each pre-token of `run`, in order; the pieces tile the run exactly.
  // `run` must be well-formed UTF-8 (the caller has checked; PCRE2 is told not to look again).
  template <class F>
  void split(std::string_view run, F&& emit) const {
    Matcher m(*this);
    if (kind_ == PreTokenizerKind::Gpt2) {
      split_regex(m, run, emit);
      return;
    }
    // SmolLM: each number code point alone. The stretch between two is its own subject, so the
    // regex's (?!\S) sees the stretch's end as the end of the input, as HF's Sequence does.
    std::size_t off = 0;
    while (off < run.size()) {
      const auto [start, end] = m.next_number(run, off);
      if (start > off) split_regex(m, run.substr(off, start - off), emit);
      if (start == end) break;  // no number left
      emit(run.substr(start, end - start));
      off = end;
    }
  }

  bool jit() const { return jit_; }

 private:
  // Per-call match state, so one PreTokenizer serves many threads.
  class Matcher {
   public:
    explicit Matcher(const PreTokenizer& pt);
    ~Matcher();
    Matcher(const Matcher&) = delete;
    Matcher& operator=(const Matcher&) = delete;
    // End of the pre-token (GPT-2's regex) starting at `off`.
    std::size_t match_end(std::string_view run, std::size_t off);
    // [start, end) of the first number code point at or after `off`; {run.size(), run.size()}
    // when there is none.
    std::pair<std::size_t, std::size_t> next_number(std::string_view run, std::size_t off);

   private:
    int run_match(const pcre2_code* code, bool jit, std::string_view run, std::size_t off);
    const PreTokenizer& pt_;
    pcre2_match_data* data_ = nullptr;
    pcre2_match_context* context_ = nullptr;  // only made when the default JIT stack ran out
    pcre2_jit_stack* stack_ = nullptr;
  };

  template <class F>
  static void split_regex(Matcher& m, std::string_view run, F& emit) {
    std::size_t off = 0;
    while (off < run.size()) {
      const std::size_t end = m.match_end(run, off);
      emit(run.substr(off, end - off));
      off = end;
    }
  }

  PreTokenizerKind kind_;
  std::string label_;  // names the tokenizer in (internal) errors
  pcre2_code* code_ = nullptr;
  pcre2_code* number_code_ = nullptr;  // \p{N}; SmolLM only
  bool jit_ = false;
  bool number_jit_ = false;
};

}  // namespace saelab::text::detail
