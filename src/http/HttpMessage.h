#pragma once
// Types shared by the HTTP server and client: headers, requests, status text.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sbx::http {

// ASCII case-insensitive equality, for header names and tokens.
bool equalsIgnoreCase(std::string_view a, std::string_view b);

// An ordered header list (duplicates kept, names compared case-insensitively).
class HttpHeaders {
 public:
  struct Field {
    std::string name;
    std::string value;
  };

  void add(std::string name, std::string value) {
    fields_.push_back(Field{std::move(name), std::move(value)});
  }
  // Replaces every field named `name` with one.
  void set(std::string_view name, std::string value);
  // The first value of `name`, or nullptr.
  const std::string* find(std::string_view name) const;
  bool has(std::string_view name) const { return find(name) != nullptr; }
  void clear() { fields_.clear(); }
  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }

  std::vector<Field>::const_iterator begin() const { return fields_.begin(); }
  std::vector<Field>::const_iterator end() const { return fields_.end(); }
  std::vector<Field>& fields() { return fields_; }

 private:
  std::vector<Field> fields_;
};

// "OK", "Not Found", ...; "Unknown" for codes without a standard phrase.
const char* statusReason(int status);

}  // namespace sbx::http
