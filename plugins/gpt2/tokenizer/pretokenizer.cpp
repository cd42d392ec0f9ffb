#include "pretokenizer.hpp"

#include "saelab/core/error.hpp"

namespace saelab::gpt2::detail {

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

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return cat("PCRE2 error ", code);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

PreTokenizer::PreTokenizer() {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                        &err, &err_off, nullptr);
  if (!code_)
    throw Error(
        cat("GPT-2 tokenizer: PCRE2 could not compile the pre-tokenization pattern at "
            "offset ",
            err_off, ": ", pcre2_message(err), " (PCRE2 must be built with Unicode support)"));
  // Without JIT (a PCRE2 built without it) the interpreter gives the same matches, only slower.
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

PreTokenizer::~PreTokenizer() {
  pcre2_code_free(code_);
}

PreTokenizer::Matcher::Matcher(const PreTokenizer& pt)
    : pt_(pt), data_(pcre2_match_data_create_from_pattern(pt.code_, nullptr)) {
  if (!data_) throw std::bad_alloc();
}

PreTokenizer::Matcher::~Matcher() {
  pcre2_match_data_free(data_);
  pcre2_match_context_free(context_);
  pcre2_jit_stack_free(stack_);
}

int PreTokenizer::Matcher::run_match(std::string_view run, std::size_t off) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(run.data());
  // The run was validated by the caller; PCRE2 would otherwise re-check it on every call.
  if (pt_.jit_) return pcre2_jit_match(pt_.code_, subject, run.size(), off, 0, data_, context_);
  return pcre2_match(pt_.code_, subject, run.size(), off, PCRE2_NO_UTF_CHECK, data_, context_);
}

std::size_t PreTokenizer::Matcher::match_end(std::string_view run, std::size_t off) {
  int rc = run_match(run, off);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !stack_) {
    // Long whitespace runs backtrack through (?!\S); give the JIT room rather than fail.
    stack_ = pcre2_jit_stack_create(64 * 1024, 256u << 20, nullptr);
    context_ = pcre2_match_context_create(nullptr);
    if (!stack_ || !context_) throw std::bad_alloc();
    pcre2_jit_stack_assign(context_, nullptr, stack_);
    rc = run_match(run, off);
  }
  if (rc < 0)
    throw Error(cat("GPT-2 tokenizer: pre-tokenization failed at byte ", off, " of a ", run.size(),
                    "-byte run: ", pcre2_message(rc)));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data_);
  // Every character is whitespace, a letter, a number or something else, so a match always starts
  // here and is never empty; anything else would be a PCRE2 defect, not bad input.
  if (ov[0] != off || ov[1] <= ov[0])
    throw Error(cat("GPT-2 tokenizer: pre-tokenization matched [", ov[0], ", ", ov[1], ") from byte ", off,
                    "; expected a non-empty match starting there"));
  return ov[1];
}

}  // namespace saelab::gpt2::detail
