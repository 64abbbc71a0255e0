#pragma once
// Percent-decoding of request paths and query strings.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sbx::http {

// Decodes %XX escapes. `plusIsSpace` for query components. Returns nullopt
// for a malformed escape ("%", "%4", "%zz").
std::optional<std::string> percentDecode(std::string_view in, bool plusIsSpace = false);

// Encodes everything but unreserved characters (A-Z a-z 0-9 - . _ ~).
std::string percentEncode(std::string_view in);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Parses "a=1&b=x%20y&a=2" into decoded pairs in order (repeated keys kept;
// "flag" alone gives ("flag", "")). nullopt if an escape is malformed.
std::optional<QueryParams> parseQuery(std::string_view raw);

}  // namespace sbx::http
