#pragma once
// Internal: GPT-2's pre-tokenization regex over one well-formed UTF-8 run, through PCRE2 (JIT when
// the library has it). \s is spelled out as Unicode White_Space ([\t-\r \x85\p{Z}]) because
// PCRE2's own \s also takes U+180E, which Oniguruma (HF) and Rust's regex (tiktoken) do not.
#include <cstddef>
#include <string_view>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

namespace saelab::gpt2::detail {

class PreTokenizer {
 public:
  PreTokenizer();
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Calls emit(piece) for each pre-token of `run`, in order; the pieces tile the run exactly.
  // `run` must be well-formed UTF-8 (the caller has checked; PCRE2 is told not to look again).
  template <class F>
  void split(std::string_view run, F&& emit) const {
    Matcher m(*this);
    std::size_t off = 0;
    while (off < run.size()) {
      const std::size_t end = m.match_end(run, off);
      emit(run.substr(off, end - off));
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
    // End of the pre-token starting at `off`.
    std::size_t match_end(std::string_view run, std::size_t off);

   private:
    int run_match(std::string_view run, std::size_t off);
    const PreTokenizer& pt_;
    pcre2_match_data* data_ = nullptr;
    pcre2_match_context* context_ = nullptr;  // only made when the default JIT stack ran out
    pcre2_jit_stack* stack_ = nullptr;
  };

  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

}  // namespace saelab::gpt2::detail
