#include "saelab/data/memory_reader.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "saelab/core/error.hpp"

namespace saelab {
using nlohmann::json;

namespace {
std::uint64_t mix(std::uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

TensorActivationReader::TensorActivationReader(torch::Tensor activations, ReaderOptions opts)
    : TensorActivationReader(ActivationRows{std::move(activations), {}, {}, {}}, opts) {}

TensorActivationReader::TensorActivationReader(ActivationRows rows, ReaderOptions opts)
    : rows_(std::move(rows)), opts_(opts) {
  SAELAB_CHECK(rows_.activations.defined() && rows_.activations.dim() == 2, Error,
               "TensorActivationReader: activations must be [n, d], got ",
               rows_.activations.defined() ? rows_.activations.sizes() : at::IntArrayRef{});
  n_ = rows_.activations.size(0);
  SAELAB_CHECK(n_ > 0, Error, "TensorActivationReader: no rows");
  SAELAB_CHECK(opts_.batch_rows > 0, Error, "TensorActivationReader: batch_rows must be > 0, got ",
               opts_.batch_rows);
  if (!rows_.tokens.defined()) rows_.tokens = torch::zeros({n_}, torch::kInt32);
  if (!rows_.sequence.defined()) rows_.sequence = torch::arange(n_, torch::kInt64);
  if (!rows_.position.defined()) rows_.position = torch::zeros({n_}, torch::kInt32);
  for (const torch::Tensor* t : {&rows_.tokens, &rows_.sequence, &rows_.position}) {
    SAELAB_CHECK(t->dim() == 1 && t->size(0) == n_, Error,
                 "TensorActivationReader: provenance tensors must be [", n_, "], got ", t->sizes());
  }
  start_epoch(0);
}

void TensorActivationReader::start_epoch(std::int64_t epoch) {
  epoch_ = epoch;
  offset_ = 0;
  if (!opts_.shuffle) {
    order_ = torch::arange(n_, torch::kInt64);
    return;
  }
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(mix(opts_.seed ^ mix(std::uint64_t(epoch))));
  order_ = torch::randperm(n_, gen, torch::kInt64);
}

torch::Tensor TensorActivationReader::next_indices() {
  torch::Tensor idx = torch::empty({opts_.batch_rows}, torch::kInt64);
  std::int64_t filled = 0;
  while (filled < opts_.batch_rows) {
    if (offset_ == n_) start_epoch(epoch_ + 1);
    const std::int64_t take = std::min(opts_.batch_rows - filled, n_ - offset_);
    idx.narrow(0, filled, take).copy_(order_.narrow(0, offset_, take));
    filled += take;
    offset_ += take;
  }
  return idx;
}

torch::Tensor TensorActivationReader::next_batch() {
  return rows_.activations.index_select(0, next_indices()).to(opts_.device, torch::kFloat32);
}

ActivationRows TensorActivationReader::gather(const torch::Tensor& idx, bool with_provenance) const {
  ActivationRows out{rows_.activations.index_select(0, idx).to(opts_.device, torch::kFloat32), {}, {}, {}};
  if (!with_provenance) return out;
  out.tokens = rows_.tokens.index_select(0, idx);
  out.sequence = rows_.sequence.index_select(0, idx);
  out.position = rows_.position.index_select(0, idx);
  return out;
}

ActivationRows TensorActivationReader::next_rows() {
  return gather(next_indices(), true);
}

ActivationRows TensorActivationReader::next_part(std::int64_t part, std::int64_t parts,
                                                 bool with_provenance) {
  const std::int64_t n = batch_part_rows(part, parts, opts_.batch_rows, "TensorActivationReader");
  return gather(next_indices().narrow(0, part * n, n), with_provenance);
}

json TensorActivationReader::cursor() const {
  return json{{"reader", "memory"},       {"rows", n_},      {"seed", opts_.seed},
              {"shuffle", opts_.shuffle}, {"epoch", epoch_}, {"offset", offset_}};
}

void TensorActivationReader::restore(const json& c) {
  auto get = [&](const char* key) -> const json& {
    SAELAB_CHECK(c.is_object() && c.contains(key), FormatError, "reader cursor ", c.dump(), ": key '", key,
                 "' is missing");
    return c.at(key);
  };
  SAELAB_CHECK(get("reader") == "memory", FormatError, "reader cursor ", c.dump(), ": written by reader ",
               get("reader").dump(), ", this is the in-memory reader");
  SAELAB_CHECK(
      get("rows") == json(n_) && get("seed") == json(opts_.seed) && get("shuffle") == json(opts_.shuffle),
      FormatError, "reader cursor ", c.dump(), ": belongs to other data (this reader has ", n_,
      " rows, seed ", opts_.seed, ", shuffle ", opts_.shuffle, ")");
  const json& e = get("epoch");
  const json& o = get("offset");
  SAELAB_CHECK(e.is_number_integer() && o.is_number_integer() && e.get<std::int64_t>() >= 0 &&
                   o.get<std::int64_t>() >= 0 && o.get<std::int64_t>() <= n_,
               FormatError, "reader cursor ", c.dump(), ": epoch must be ≥ 0 and offset in [0, ", n_, "]");
  start_epoch(e.get<std::int64_t>());
  offset_ = o.get<std::int64_t>();
}

}  // namespace saelab
