#pragma once
// Thin layer over the HDF5 C API: owned handles, and errors that become exceptions with a message.
//
// HDF5 reports failures by pushing onto a per-thread error stack and, by default, printing it to
// stderr. quiet() turns the printing off for the calling thread; check() turns a failed call into
// an exception whose text is the error stack condensed to one line (innermost causes first, e.g.
// "No space left on device" or "data error detected by Fletcher32 checksum"), prefixed with what
// the caller was doing and to which file.
#include <cstdint>
#include <string>
#include <utility>

#include <hdf5.h>

#include "saelab/core/error.hpp"

namespace saelab::h5 {

// Disables HDF5's automatic error printing for this thread (cheap after the first call).
void quiet();

// The calling thread's HDF5 error stack as one line, then clears it. "" if empty.
std::string take_error_stack();

template <class E = Error>
[[noreturn]] void fail(const std::string& what) {
  std::string stack = take_error_stack();
  throw E(stack.empty() ? what : cat(what, ": ", stack));
}

template <class E = Error>
hid_t check_id(hid_t id, const std::string& what) {
  if (id < 0) fail<E>(what);
  return id;
}

template <class E = Error>
void check(herr_t rc, const std::string& what) {
  if (rc < 0) fail<E>(what);
}

// An owned hid_t, closed with the right H5?close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), closer_(o.closer_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      closer_ = o.closer_;
    }
    return *this;
  }
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  // Closes now and reports failure (a file close flushes, so a full disk can surface here).
  herr_t close() {
    herr_t rc = 0;
    if (id_ >= 0 && closer_) rc = closer_(id_);
    id_ = -1;
    return rc;
  }
  void reset() {
    if (id_ >= 0) {
      close();
      H5Eclear2(H5E_DEFAULT);  // a failed close in a destructor must not leak into the next error
    }
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

template <class E = Error>
Handle file_handle(hid_t id, const std::string& what) {
  return Handle(check_id<E>(id, what), H5Fclose);
}
template <class E = Error>
Handle dataset_handle(hid_t id, const std::string& what) {
  return Handle(check_id<E>(id, what), H5Dclose);
}
template <class E = Error>
Handle space_handle(hid_t id, const std::string& what) {
  return Handle(check_id<E>(id, what), H5Sclose);
}
template <class E = Error>
Handle type_handle(hid_t id, const std::string& what) {
  return Handle(check_id<E>(id, what), H5Tclose);
}
template <class E = Error>
Handle plist_handle(hid_t id, const std::string& what) {
  return Handle(check_id<E>(id, what), H5Pclose);
}
template <class E = Error>
Handle attr_handle(hid_t id, const std::string& what) {
  return Handle(check_id<E>(id, what), H5Aclose);
}

// IEEE binary16 as an HDF5 float type; h5py maps exactly this layout to numpy float16.
Handle float16_type();

// Scalar attributes on an object (the root group of a shard, or a dataset).
void write_attr(hid_t obj, const char* name, const std::string& value);
void write_attr(hid_t obj, const char* name, std::int64_t value);
bool has_attr(hid_t obj, const char* name);
// Readers throw FormatError naming `where` and the attribute when it is missing or mistyped.
std::string read_string_attr(hid_t obj, const char* name, const std::string& where);
std::int64_t read_int_attr(hid_t obj, const char* name, const std::string& where);

}  // namespace saelab::h5
