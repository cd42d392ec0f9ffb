// Corpus readers: a JSONL file and a text file, read in the order CorpusDocuments reads them.
// Input: doc.jsonl PART doc.txt
#include "../fuzz_support.hpp"
#include "saelab/data/corpus.hpp"

SAELAB_FUZZ_TARGET("corpus") {
  const auto parts = saelab::fuzz::split_parts(data, size);
  const auto dir = saelab::fuzz::fresh_dir() / "corpus";
  std::filesystem::create_directories(dir);
  saelab::fuzz::write_file(dir / "a.jsonl", parts[0]);
  if (parts.size() > 1) saelab::fuzz::write_file(dir / "b.txt", parts[1]);
  saelab::CorpusConfig cfg;
  cfg.paths = {dir};
  saelab::CorpusDocuments docs(cfg);
  saelab::CorpusDocument doc;
  std::size_t bytes = 0;
  while (docs.next(doc)) bytes += doc.text.size();
  if (bytes > size) saelab::fuzz::report_finding("corpus", "documents longer than the input", "");
  (void)docs.fingerprint();
}
