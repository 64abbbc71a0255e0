#pragma once
// Result<T>: a value or an error message. Errors are values on the loop path
// (STYLE.md §5); exceptions are not used for expected failures.

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace sbx {

// An error with a human-readable message and an optional machine code
// (e.g. an HTTP status or a mapped gRPC code). Cheap to move.
struct Error {
  std::string message;
  int code = 0;

  Error() = default;
  explicit Error(std::string msg, int c = 0) : message(std::move(msg)), code(c) {}
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error err) : v_(std::in_place_index<1>, std::move(err)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }
  const std::string& message() const { return error().message; }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error err) : failed_(true), err_(std::move(err)) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { assert(!ok()); return err_; }
  const std::string& message() const { return error().message; }

 private:
  // A flag and a plain Error rather than std::optional<Error>: optional
  // nested in optional (std::optional<Status>) trips GCC 12's
  // -Wmaybe-uninitialized.
  bool failed_ = false;
  Error err_;
};

using Status = Result<void>;

inline Error makeError(std::string msg, int code = 0) { return Error(std::move(msg), code); }

}  // namespace sbx
