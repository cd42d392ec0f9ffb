#include "shard_file.hpp"

#include <string>
#include <system_error>

#include "saelab/core/fs_util.hpp"
#include "saelab/core/sha256.hpp"

namespace saelab::hdf5_store {
namespace fs = std::filesystem;

namespace {

// The in-memory shard grows by this much at a time.
constexpr std::size_t kCoreIncrement = std::size_t{16} << 20;

h5::Handle activation_type(RowDtype t) {
  switch (t) {
    case RowDtype::Float32:
      return h5::type_handle(H5Tcopy(H5T_IEEE_F32LE), "float32 type");
    case RowDtype::Float16:
      return h5::float16_type();
    case RowDtype::BFloat16:
      return h5::type_handle(H5Tcopy(H5T_STD_U16LE), "bfloat16 type");
  }
  throw Error("unknown row dtype");
}

h5::Handle create_dataset(hid_t file, const char* name, hid_t type, std::int64_t cols, const Layout& layout,
                          const std::string& where) {
  const std::string what = cat("cannot create dataset '", name, "' in ", where);
  const int rank = cols > 0 ? 2 : 1;
  hsize_t dims[2] = {0, static_cast<hsize_t>(cols)};
  hsize_t maxdims[2] = {H5S_UNLIMITED, static_cast<hsize_t>(cols)};
  hsize_t chunk[2] = {static_cast<hsize_t>(layout.chunk_rows), static_cast<hsize_t>(cols)};
  h5::Handle dcpl = h5::plist_handle(H5Pcreate(H5P_DATASET_CREATE), what);
  h5::check(H5Pset_chunk(dcpl.get(), rank, chunk), what);
  if (layout.compression == "gzip") {
    h5::check(H5Pset_shuffle(dcpl.get()), what);
    h5::check(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(layout.compression_level)), what);
  }
  // Last in the pipeline, so the checksum covers the bytes as stored.
  h5::check(H5Pset_fletcher32(dcpl.get()), what);
  h5::check(H5Pset_obj_track_times(dcpl.get(), false), what);
  h5::check(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), what);
  h5::Handle space = h5::space_handle(H5Screate_simple(rank, dims, maxdims), what);
  return h5::dataset_handle(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                            what);
}

void write_meta_attrs(hid_t obj, const StoreMeta& m) {
  h5::write_attr(obj, "format", std::string(kShardFormat));
  h5::write_attr(obj, "format_version", kFormatVersion);
  h5::write_attr(obj, "model_id", m.model_id);
  h5::write_attr(obj, "config_hash", m.config_hash);
  h5::write_attr(obj, "hook", m.hook);
  h5::write_attr(obj, "d", m.d);
  h5::write_attr(obj, "dtype", m.dtype);
  h5::write_attr(obj, "context_size", m.context_size);
  h5::write_attr(obj, "prepend_bos", std::int64_t(m.prepend_bos));
  h5::write_attr(obj, "exclude_bos", std::int64_t(m.exclude_bos));
  h5::write_attr(obj, "tokenizer_sha256", m.tokenizer_sha256);
  h5::write_attr(obj, "corpus_fingerprint", m.corpus_fingerprint);
  h5::write_attr(obj, "saelab_version", m.saelab_version);
}

StoreMeta read_meta_attrs(hid_t obj, const std::string& where) {
  StoreMeta m;
  m.model_id = h5::read_string_attr(obj, "model_id", where);
  m.config_hash = h5::read_string_attr(obj, "config_hash", where);
  m.hook = h5::read_string_attr(obj, "hook", where);
  m.d = h5::read_int_attr(obj, "d", where);
  m.dtype = h5::read_string_attr(obj, "dtype", where);
  m.context_size = h5::read_int_attr(obj, "context_size", where);
  m.prepend_bos = h5::read_int_attr(obj, "prepend_bos", where) != 0;
  m.exclude_bos = h5::read_int_attr(obj, "exclude_bos", where) != 0;
  m.tokenizer_sha256 = h5::read_string_attr(obj, "tokenizer_sha256", where);
  m.corpus_fingerprint = h5::read_string_attr(obj, "corpus_fingerprint", where);
  m.saelab_version = h5::read_string_attr(obj, "saelab_version", where);
  return m;
}

}  // namespace

// ---- ShardWriter ----

ShardWriter::ShardWriter(const fs::path& path, const StoreMeta& meta, const Layout& layout, RowDtype dtype,
                         std::int64_t shard_index)
    : path_(path), d_(meta.d) {
  h5::quiet();
  const std::string what = cat("cannot create shard '", path.string(), "'");
  act_type_ = activation_type(dtype);
  h5::Handle fcpl = h5::plist_handle(H5Pcreate(H5P_FILE_CREATE), what);
  h5::check(H5Pset_obj_track_times(fcpl.get(), false), what);  // root group: no timestamps
  h5::Handle fapl = h5::plist_handle(H5Pcreate(H5P_FILE_ACCESS), what);
  h5::check(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), what);
  // The shard is built in memory (core driver, no backing store) and written out by close() in
  // one piece. HDF5 never touches the disk itself: a full disk is then a plain write() error we
  // report and clean up, where a failed flush inside H5Fclose would leave a half-closed file
  // that crashes the library at exit.
  h5::check(H5Pset_fapl_core(fapl.get(), kCoreIncrement, /*backing_store=*/false), what);
  file_ = h5::file_handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), what);
  act_ = create_dataset(file_.get(), "activations", act_type_.get(), d_, layout, path.string());
  tok_ = create_dataset(file_.get(), "tokens", H5T_STD_I32LE, 0, layout, path.string());
  seq_ = create_dataset(file_.get(), "sequence", H5T_STD_I64LE, 0, layout, path.string());
  pos_ = create_dataset(file_.get(), "position", H5T_STD_I32LE, 0, layout, path.string());
  if (dtype == RowDtype::BFloat16) h5::write_attr(act_.get(), "encoding", std::string("bfloat16"));
  write_meta_attrs(file_.get(), meta);
  h5::write_attr(file_.get(), "shard_index", shard_index);
}

void ShardWriter::append(h5::Handle& ds, hid_t mem_type, int rank, const void* data, std::int64_t n) {
  const std::string what =
      cat("cannot write rows ", rows_, "..", rows_ + n - 1, " to '", path_.string(), "'");
  hsize_t new_dims[2] = {static_cast<hsize_t>(rows_ + n), static_cast<hsize_t>(d_)};
  h5::check(H5Dset_extent(ds.get(), new_dims), what);
  h5::Handle fspace = h5::space_handle(H5Dget_space(ds.get()), what);
  hsize_t start[2] = {static_cast<hsize_t>(rows_), 0};
  hsize_t count[2] = {static_cast<hsize_t>(n), static_cast<hsize_t>(d_)};
  h5::check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), what);
  h5::Handle mspace = h5::space_handle(H5Screate_simple(rank, count, nullptr), what);
  h5::check(H5Dwrite(ds.get(), mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, data), what);
}

void ShardWriter::write(const void* act, const std::int32_t* tokens, const std::int64_t* sequence,
                        const std::int32_t* position, std::int64_t n) {
  h5::quiet();
  if (n <= 0) return;
  append(act_, act_type_.get(), 2, act, n);
  append(tok_, H5T_NATIVE_INT32, 1, tokens, n);
  append(seq_, H5T_NATIVE_INT64, 1, sequence, n);
  append(pos_, H5T_NATIVE_INT32, 1, position, n);
  rows_ += n;
}

ShardWriter::Written ShardWriter::close(std::int64_t first_sequence, std::int64_t end_sequence) {
  h5::quiet();
  h5::write_attr(file_.get(), "rows", rows_);
  h5::write_attr(file_.get(), "first_sequence", first_sequence);
  h5::write_attr(file_.get(), "end_sequence", end_sequence);
  act_.reset();
  tok_.reset();
  seq_.reset();
  pos_.reset();
  const std::string what = cat("cannot finish shard '", path_.string(), "'");
  h5::check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), what);
  const ssize_t size = H5Fget_file_image(file_.get(), nullptr, 0);
  if (size < 0) h5::fail(what);
  std::string image(static_cast<std::size_t>(size), '\0');
  if (H5Fget_file_image(file_.get(), image.data(), image.size()) != size) h5::fail(what);
  if (file_.close() < 0) h5::fail(what);  // memory only: nothing left to flush
  write_file_synced(path_, image);
  return Written{image.size(), sha256_hex(image)};
}

void ShardWriter::abandon() {
  act_.reset();
  tok_.reset();
  seq_.reset();
  pos_.reset();
  file_.reset();
  H5Eclear2(H5E_DEFAULT);
}

// ---- ShardReader ----

ShardReader::ShardReader(const fs::path& path, const ShardEntry& entry, const StoreMeta& meta, RowDtype dtype)
    : path_(path), where_(cat("shard '", path.string(), "'")), rows_(entry.rows), d_(meta.d), dtype_(dtype) {
  h5::quiet();
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec)
    throw FormatError(cat(where_, " is listed in the manifest but cannot be read (", ec.message(),
                          "); the store is damaged: restore the file or re-harvest"));
  if (size != entry.bytes)
    throw FormatError(
        cat(where_, " is ", size, " bytes but the manifest says ", entry.bytes,
            ": the file is truncated or was replaced; check it with `saelab store info --verify`"));
  h5::Handle fapl = h5::plist_handle<FormatError>(H5Pcreate(H5P_FILE_ACCESS), where_);
  h5::check<FormatError>(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), where_);
  file_ = h5::file_handle<FormatError>(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()),
                                       cat(where_, " is not a readable HDF5 file"));
  check_attributes(entry, meta);
  act_type_ = activation_type(dtype);
  act_ = open_dataset("activations", d_, H5Tget_class(act_type_.get()), row_dtype_bytes(dtype));
  h5::Handle ft = h5::type_handle<FormatError>(H5Dget_type(act_.get()), where_);
  if (H5Tequal(ft.get(), act_type_.get()) <= 0)
    throw FormatError(cat(where_, ": dataset 'activations' does not have the HDF5 type of dtype ",
                          row_dtype_name(dtype), " (see store_format.hpp)"));
  if (dtype == RowDtype::BFloat16 &&
      (!h5::has_attr(act_.get(), "encoding") ||
       h5::read_string_attr(act_.get(), "encoding", where_ + ": activations") != "bfloat16"))
    throw FormatError(cat(where_, ": dataset 'activations' lacks the attribute encoding = \"bfloat16\""));
  tok_ = open_dataset("tokens", 0, H5T_INTEGER, 4);
  seq_ = open_dataset("sequence", 0, H5T_INTEGER, 8);
  pos_ = open_dataset("position", 0, H5T_INTEGER, 4);
}

void ShardReader::check_attributes(const ShardEntry& entry, const StoreMeta& meta) {
  const hid_t root = file_.get();
  const std::string format = h5::has_attr(root, "format") ? h5::read_string_attr(root, "format", where_) : "";
  if (format != kShardFormat)
    throw FormatError(cat(where_, " is an HDF5 file but not a saelab activation shard (attribute format = '",
                          format, "', expected '", kShardFormat, "')"));
  const std::int64_t version = h5::read_int_attr(root, "format_version", where_);
  if (version != kFormatVersion)
    throw FormatError(
        cat(where_, ": format_version ", version, " is not supported (expected ", kFormatVersion, ")"));
  const std::string diff = meta_difference(meta, read_meta_attrs(root, where_));
  if (!diff.empty())
    throw FormatError(cat(where_, " does not belong to this store: its ", diff,
                          ". Shards of different models, hooks or corpora cannot be mixed; remove it"
                          " or re-harvest"));
  struct {
    const char* name;
    std::int64_t want;
  } ints[] = {
      {"rows", entry.rows}, {"first_sequence", entry.first_sequence}, {"end_sequence", entry.end_sequence}};
  for (const auto& a : ints) {
    const std::int64_t got = h5::read_int_attr(root, a.name, where_);
    if (got != a.want)
      throw FormatError(cat(where_, ": attribute ", a.name, " = ", got, " but the manifest says ", a.want,
                            "; the file does not match the manifest entry"));
  }
}

h5::Handle ShardReader::open_dataset(const char* name, std::int64_t cols, H5T_class_t cls, std::size_t size) {
  const std::string what = cat(where_, ": dataset '", name, "'");
  if (H5Lexists(file_.get(), name, H5P_DEFAULT) <= 0) {
    h5::take_error_stack();
    throw FormatError(cat(what, " is missing"));
  }
  // Whole chunks are read straight into the caller's buffer: a chunk cache would only copy twice.
  h5::Handle dapl = h5::plist_handle<FormatError>(H5Pcreate(H5P_DATASET_ACCESS), what);
  h5::check<FormatError>(H5Pset_chunk_cache(dapl.get(), 0, 0, 1.0), what);
  h5::Handle ds = h5::dataset_handle<FormatError>(H5Dopen2(file_.get(), name, dapl.get()), what);
  h5::Handle sp = h5::space_handle<FormatError>(H5Dget_space(ds.get()), what);
  h5::Handle ty = h5::type_handle<FormatError>(H5Dget_type(ds.get()), what);
  const int rank = H5Sget_simple_extent_ndims(sp.get());
  hsize_t dims[2] = {0, 0};
  const bool shape_ok =
      rank == (cols > 0 ? 2 : 1) && H5Sget_simple_extent_dims(sp.get(), dims, nullptr) == rank &&
      dims[0] == static_cast<hsize_t>(rows_) && (cols == 0 || dims[1] == static_cast<hsize_t>(cols));
  if (!shape_ok)
    throw FormatError(cat(what, " has shape [", dims[0], rank == 2 ? cat(", ", dims[1]) : "", "]; expected [",
                          rows_, cols > 0 ? cat(", ", cols) : "", "]"));
  if (H5Tget_class(ty.get()) != cls || H5Tget_size(ty.get()) != size)
    throw FormatError(cat(what, " has an unexpected element type (", H5Tget_size(ty.get()),
                          "-byte); expected ", size, "-byte ", cls == H5T_FLOAT ? "float" : "integer"));
  return ds;
}

void ShardReader::read_range(hid_t ds, hid_t mem_type, int rank, std::int64_t row0, std::int64_t n, void* dst,
                             const char* name) {
  const std::string what = cat(where_, ": cannot read rows ", row0, "..", row0 + n - 1, " of '", name,
                               "' (the file is damaged; `saelab store info --verify` checks every shard)");
  h5::Handle fspace = h5::space_handle<FormatError>(H5Dget_space(ds), what);
  hsize_t start[2] = {static_cast<hsize_t>(row0), 0};
  hsize_t count[2] = {static_cast<hsize_t>(n), static_cast<hsize_t>(d_)};
  h5::check<FormatError>(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr),
                         what);
  h5::Handle mspace = h5::space_handle<FormatError>(H5Screate_simple(rank, count, nullptr), what);
  h5::check<FormatError>(H5Dread(ds, mem_type, mspace.get(), fspace.get(), H5P_DEFAULT, dst), what);
}

void ShardReader::read(std::int64_t row0, std::int64_t n, void* act, std::int32_t* tokens,
                       std::int64_t* sequence, std::int32_t* position) {
  h5::quiet();
  SAELAB_CHECK(row0 >= 0 && n >= 0 && row0 + n <= rows_, Error, where_, ": rows ", row0, "+", n,
               " out of range (", rows_, " rows)");
  if (n == 0) return;
  if (act) read_range(act_.get(), act_type_.get(), 2, row0, n, act, "activations");
  if (tokens) read_range(tok_.get(), H5T_NATIVE_INT32, 1, row0, n, tokens, "tokens");
  if (sequence) read_range(seq_.get(), H5T_NATIVE_INT64, 1, row0, n, sequence, "sequence");
  if (position) read_range(pos_.get(), H5T_NATIVE_INT32, 1, row0, n, position, "position");
}

std::string ShardReader::verify_chunks(std::int64_t chunk_rows) {
  std::vector<unsigned char> act(static_cast<std::size_t>(chunk_rows * d_) * row_dtype_bytes(dtype_));
  std::vector<std::int32_t> tok(static_cast<std::size_t>(chunk_rows)), pos(tok.size());
  std::vector<std::int64_t> seq(tok.size());
  for (std::int64_t r = 0; r < rows_; r += chunk_rows) {
    const std::int64_t n = std::min(chunk_rows, rows_ - r);
    try {
      read(r, n, act.data(), tok.data(), seq.data(), pos.data());
    } catch (const FormatError& e) {
      return e.what();
    }
  }
  return "";
}

}  // namespace saelab::hdf5_store
