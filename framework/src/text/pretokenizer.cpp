#include "text/pretokenizer.hpp"

#include "saelab/core/error.hpp"

namespace saelab::text::detail {

namespace {

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+  with \s written out.
#define SAELAB_WS "\\t-\\r\\x{20}\\x{85}\\p{Z}"
constexpr const char* kPattern =
    "'s|'t|'re|'ve|'m|'ll|'d"
    "| ?\\p{L}+| ?\\p{N}+"
    "| ?[^" SAELAB_WS
    "\\p{L}\\p{N}]+"
    "|[" SAELAB_WS "]+(?![^" SAELAB_WS
    "])"
    "|[" SAELAB_WS "]+";
#undef SAELAB_WS
// One number code point (Nd, Nl, No), as Rust's char::is_numeric behind HF's Digits.
constexpr const char* kNumberPattern = "\\p{N}";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return cat("PCRE2 error ", code);
  return reinterpret_cast<const char*>(buf);
}

// Compiles `pattern` in UTF + Unicode-property mode; `jit` says whether JIT compilation worked.
pcre2_code* compile(const std::string& label, const char* pattern, bool& jit) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!code)
    throw Error(cat(label,
                    ": PCRE2 could not compile the pre-tokenization pattern at "
                    "offset ",
                    err_off, ": ", pcre2_message(err), " (PCRE2 must be built with Unicode support)"));
  // Without JIT (a PCRE2 built without it) the interpreter gives the same matches, only slower.
  jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return code;
}

}  // namespace

PreTokenizer::PreTokenizer(PreTokenizerKind kind)
    : kind_(kind), label_(kind == PreTokenizerKind::Gpt2 ? "GPT-2 tokenizer" : "SmolLM tokenizer") {
  code_ = compile(label_, kPattern, jit_);
  if (kind_ == PreTokenizerKind::SmolLM) {
    try {
      number_code_ = compile(label_, kNumberPattern, number_jit_);
    } catch (...) {
      pcre2_code_free(code_);
      throw;
    }
  }
}

PreTokenizer::~PreTokenizer() {
  pcre2_code_free(code_);
  pcre2_code_free(number_code_);
}

// Both patterns have no capture groups, so match data sized for one serves the other.
PreTokenizer::Matcher::Matcher(const PreTokenizer& pt)
    : pt_(pt), data_(pcre2_match_data_create_from_pattern(pt.code_, nullptr)) {
  if (!data_) throw std::bad_alloc();
}

PreTokenizer::Matcher::~Matcher() {
  pcre2_match_data_free(data_);
  pcre2_match_context_free(context_);
  pcre2_jit_stack_free(stack_);
}

int PreTokenizer::Matcher::run_match(const pcre2_code* code, bool jit, std::string_view run,
                                     std::size_t off) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(run.data());
  // The run was validated by the caller; PCRE2 would otherwise re-check it on every call.
  if (jit) return pcre2_jit_match(code, subject, run.size(), off, 0, data_, context_);
  return pcre2_match(code, subject, run.size(), off, PCRE2_NO_UTF_CHECK, data_, context_);
}

std::size_t PreTokenizer::Matcher::match_end(std::string_view run, std::size_t off) {
  int rc = run_match(pt_.code_, pt_.jit_, run, off);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !stack_) {
    // Long whitespace runs backtrack through (?!\S); give the JIT room rather than fail.
    stack_ = pcre2_jit_stack_create(64 * 1024, 256u << 20, nullptr);
    context_ = pcre2_match_context_create(nullptr);
    if (!stack_ || !context_) throw std::bad_alloc();
    pcre2_jit_stack_assign(context_, nullptr, stack_);
    rc = run_match(pt_.code_, pt_.jit_, run, off);
  }
  if (rc < 0)
    throw Error(cat(pt_.label_, ": pre-tokenization failed at byte ", off, " of a ", run.size(),
                    "-byte run: ", pcre2_message(rc)));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data_);
  // Every character is whitespace, a letter, a number or something else, so a match always starts
  // here and is never empty; anything else would be a PCRE2 defect, not bad input.
  if (ov[0] != off || ov[1] <= ov[0])
    throw Error(cat(pt_.label_, ": pre-tokenization matched [", ov[0], ", ", ov[1], ") from byte ", off,
                    "; expected a non-empty match starting there"));
  return ov[1];
}

std::pair<std::size_t, std::size_t> PreTokenizer::Matcher::next_number(std::string_view run,
                                                                       std::size_t off) {
  // A single-character class never backtracks, so the default JIT stack always suffices.
  const int rc = run_match(pt_.number_code_, pt_.number_jit_, run, off);
  if (rc == PCRE2_ERROR_NOMATCH) return {run.size(), run.size()};
  if (rc < 0)
    throw Error(cat(pt_.label_, ": looking for a number from byte ", off, " of a ", run.size(),
                    "-byte run failed: ", pcre2_message(rc)));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data_);
  if (ov[0] < off || ov[1] <= ov[0] || ov[1] > run.size())
    throw Error(cat(pt_.label_, ": the number match [", ov[0], ", ", ov[1], ") from byte ", off,
                    " is not one character of the run"));
  return {ov[0], ov[1]};
}

}  // namespace saelab::text::detail
