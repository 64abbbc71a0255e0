#include "config/ConfigSchema.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "base/Quantity.h"
#include "json/JsonReader.h"
#include "json/JsonWriter.h"
#include "reactor/Fd.h"

namespace sbx::config {

namespace {

constexpr int64_t kMinI64 = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();
constexpr int64_t kNanosPerSecond = 1000000000LL;

// Values are quoted in messages, but cut short so that a pasted blob does
// not flood the log (Quantity.cpp does the same).
std::string quoted(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string out = "\"";
  out.append(s.substr(0, kMaxShown));
  if (s.size() > kMaxShown) out.append("...");
  out.push_back('"');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool isBlank(std::string_view s) { return std::all_of(s.begin(), s.end(), isJsonSpace); }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// Flags may be spelled kebab or snake case; keys are snake case. Lower-case
// too, so the file-key suggestion also catches "Provision_Timeout".
std::string normalizeName(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '-') c = '_';
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string formatBytes(int64_t bytes) {
  static constexpr std::pair<std::string_view, int> kUnits[] = {{"Ei", 60}, {"Pi", 50}, {"Ti", 40},
                                                                {"Gi", 30}, {"Mi", 20}, {"Ki", 10}};
  for (const auto& [suffix, shift] : kUnits) {
    const int64_t unit = int64_t{1} << shift;
    if (bytes != 0 && bytes % unit == 0) return std::to_string(bytes / unit) + std::string(suffix);
  }
  return std::to_string(bytes);
}

std::string formatBound(const KeyDef& key, int64_t v) {
  switch (key.type) {
    case KeyType::Duration:
      return formatDuration(std::chrono::nanoseconds(v));
    case KeyType::Memory:
      return formatBytes(v);
    default:
      return std::to_string(v);
  }
}

bool hasRange(const KeyDef& key) { return key.min != kMinI64 || key.max != kMaxI64; }

Status checkRange(const KeyDef& key, int64_t v) {
  if (v >= key.min && v <= key.max) return Status();
  const bool hasMin = key.min != kMinI64;
  const bool hasMax = key.max != kMaxI64;
  if (hasMin && hasMax) {
    return Error("must be between " + formatBound(key, key.min) + " and " +
                 formatBound(key, key.max));
  }
  if (hasMin) {
    if (key.min == 1 && key.type != KeyType::Int) return Error("must be greater than 0");
    return Error("must be at least " + formatBound(key, key.min));
  }
  return Error("must be at most " + formatBound(key, key.max));
}

// Range, then the key's own validators.
Status checkValue(const KeyDef& key, const Value& value) {
  int64_t scalar = 0;
  bool ranged = true;
  if (const int64_t* i = std::get_if<int64_t>(&value)) {
    scalar = *i;
  } else if (const auto* d = std::get_if<std::chrono::nanoseconds>(&value)) {
    scalar = d->count();
  } else {
    ranged = false;
  }
  if (ranged) {
    Status s = checkRange(key, scalar);
    if (!s) return s;
  }
  for (const Validator& validate : key.validators) {
    Status s = validate(value);
    if (!s) return s;
  }
  return Status();
}

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<std::chrono::nanoseconds> secondsToDuration(int64_t secs, std::string_view shown) {
  if (secs < 0 || secs > kMaxI64 / kNanosPerSecond) {
    return Error("invalid duration " + quoted(shown) + ": too large");
  }
  return std::chrono::nanoseconds(secs * kNanosPerSecond);
}

Result<std::chrono::nanoseconds> parseDurationText(const KeyDef& key, std::string_view text) {
  // Go's time.ParseDuration accepts a bare "0"; parseDuration wants a unit.
  if (text == "0") return std::chrono::nanoseconds(0);
  if (key.bareSeconds && allDigits(text)) {
    int64_t secs = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), secs);
    if (ec != std::errc() || ptr != text.data() + text.size()) {
      return Error("invalid duration " + quoted(text) + ": too large");
    }
    return secondsToDuration(secs, text);
  }
  return parseDuration(text);
}

// ---------------------------------------------------------------------------
// JSON helpers

// Re-serializes a parsed JSON value compactly (JsonCursor does not expose
// simdjson's own serializer).
void writeJson(json::JsonWriter& w, const json::JsonCursor& c) {
  switch (c.kind()) {
    case json::JsonKind::Object:
      w.beginObject();
      c.forEachMember([&](std::string_view k, const json::JsonCursor& v) {
        w.key(k);
        writeJson(w, v);
      });
      w.endObject();
      return;
    case json::JsonKind::Array:
      w.beginArray();
      c.forEach([&](const json::JsonCursor& v) { writeJson(w, v); });
      w.endArray();
      return;
    case json::JsonKind::String: {
      std::string_view s;
      c.get(s);
      w.value(s);
      return;
    }
    case json::JsonKind::Integer: {
      int64_t i = 0;
      c.get(i);
      w.value(i);
      return;
    }
    case json::JsonKind::Double: {
      double d = 0;
      c.get(d);
      w.value(d);
      return;
    }
    case json::JsonKind::Bool: {
      bool b = false;
      c.get(b);
      w.value(b);
      return;
    }
    case json::JsonKind::Null:
    case json::JsonKind::Absent:
      w.null();
      return;
  }
}

std::string jsonText(const json::JsonCursor& c) {
  json::JsonWriter w;
  writeJson(w, c);
  return w.take();
}

// The readers below record their errors on the cursor's JsonReader (with the
// value's path) and return std::nullopt; the caller prefixes the source.

std::optional<StringList> readStringList(const json::JsonReader& reader,
                                         const json::JsonCursor& c) {
  if (c.kind() != json::JsonKind::Array) {
    c.fail("expected array of strings");
    return std::nullopt;
  }
  StringList out;
  c.forEach([&](const json::JsonCursor& item) {
    std::string s;
    if (item.kind() != json::JsonKind::String) {
      item.fail("expected string");
      return;
    }
    item.get(s);
    out.push_back(std::move(s));
  });
  if (!reader.ok()) return std::nullopt;
  return out;
}

std::optional<StringListMap> readStringListMap(const json::JsonReader& reader,
                                               const json::JsonCursor& c) {
  if (c.kind() != json::JsonKind::Object) {
    c.fail("expected object of string arrays");
    return std::nullopt;
  }
  StringListMap out;
  c.forEachMember([&](std::string_view k, const json::JsonCursor& v) {
    if (!reader.ok()) return;
    std::optional<StringList> list = readStringList(reader, v);
    if (list) out[std::string(k)] = std::move(*list);
  });
  if (!reader.ok()) return std::nullopt;
  return out;
}

std::optional<std::string> readObjectArray(const json::JsonReader& reader,
                                           const json::JsonCursor& c) {
  if (c.kind() != json::JsonKind::Array) {
    c.fail("expected array of objects");
    return std::nullopt;
  }
  c.forEach([&](const json::JsonCursor& item) {
    if (item.kind() != json::JsonKind::Object) item.fail("expected object");
  });
  if (!reader.ok()) return std::nullopt;
  return jsonText(c);
}

// Parses `text` as the JSON value of a list, map or array-of-objects key
// given as text. The reader names its root "request body"; the root's kind is
// checked here so that no message says that. Later messages name the position
// inside the value ("docker.io[0]: expected string") but not the key, like
// every parseText() message.
Result<json::JsonCursor> parseJsonRoot(json::JsonReader& reader, std::string_view text,
                                       json::JsonKind rootKind, std::string_view expected) {
  Result<json::JsonCursor> root = reader.parse(text);
  if (!root) return root.error();
  if (root->kind() != rootKind) return Error("expected " + std::string(expected));
  return root;
}

}  // namespace

// ---------------------------------------------------------------------------
// Free functions

std::string Source::describe() const {
  switch (kind) {
    case SourceKind::Default:
      return "default";
    case SourceKind::File:
      return "config file " + name;
    case SourceKind::Env:
    case SourceKind::Flag:
      return name;
  }
  return name;
}

EnvLookup processEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    // Read once at start, before any thread could call setenv().
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<std::optional<std::string>> readFileFromDisk(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Error(std::string("cannot open: ") + std::strerror(errno));
  }
  std::string content;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error(std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
  }
  return std::optional<std::string>(std::move(content));
}

// ---------------------------------------------------------------------------
// Schema

Schema::Schema(SchemaInfo info) : info_(std::move(info)) {}

size_t Schema::add(KeyDef def) {
  // Programming errors in a daemon's key list: fail loudly at start.
  if (def.name.empty() || def.name == "config" || def.name == "help" || find(def.name) != nullptr ||
      normalizeName(def.name) != def.name) {
    std::abort();
  }
  keys_.push_back(std::move(def));
  return keys_.size() - 1;
}

const KeyDef* Schema::find(std::string_view name) const {
  for (const KeyDef& k : keys_) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string Schema::envName(const KeyDef& key) const { return info_.envPrefix + upper(key.name); }

std::string Schema::flagName(const KeyDef& key) {
  std::string out = "--" + key.name;
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

Result<Value> Schema::parseText(const KeyDef& key, std::string_view text) const {
  auto parsed = [&]() -> Result<Value> {
    switch (key.type) {
      case KeyType::String:
        return Value(std::string(text));
      case KeyType::Bool: {
        const std::string lower = normalizeName(text);
        if (lower == "true" || lower == "1") return Value(true);
        if (lower == "false" || lower == "0") return Value(false);
        return Error("expected true, false, 1 or 0, got " + quoted(text));
      }
      case KeyType::Int: {
        int64_t v = 0;
        std::string_view digits = text;
        if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
        auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
        if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
          return Error("expected integer, got " + quoted(text));
        }
        return Value(v);
      }
      case KeyType::Duration: {
        Result<std::chrono::nanoseconds> d = parseDurationText(key, text);
        if (!d) return d.error();
        return Value(*d);
      }
      case KeyType::Memory: {
        Result<int64_t> m = parseMemoryBytes(text);
        if (!m) return m.error();
        return Value(*m);
      }
      case KeyType::StringList: {
        const std::string_view t = trim(text);
        if (!t.empty() && t.front() == '[') {
          json::JsonReader reader;
          Result<json::JsonCursor> root =
              parseJsonRoot(reader, t, json::JsonKind::Array, "a JSON array of strings");
          if (!root) return root.error();
          std::optional<StringList> list = readStringList(reader, *root);
          if (!list) return Error(reader.error());
          return Value(std::move(*list));
        }
        StringList out;
        size_t start = 0;
        while (start <= t.size()) {
          size_t comma = t.find(',', start);
          if (comma == std::string_view::npos) comma = t.size();
          std::string_view item = trim(t.substr(start, comma - start));
          if (!item.empty()) out.emplace_back(item);
          start = comma + 1;
        }
        return Value(std::move(out));
      }
      case KeyType::StringListMap: {
        if (isBlank(text)) return Value(StringListMap());
        json::JsonReader reader;
        Result<json::JsonCursor> root = parseJsonRoot(
            reader, text, json::JsonKind::Object,
            "a JSON object of string arrays, e.g. {\"docker.io\":[\"http://127.0.0.1:5000\"]}");
        if (!root) return root.error();
        std::optional<StringListMap> map = readStringListMap(reader, *root);
        if (!map) return Error(reader.error());
        return Value(std::move(*map));
      }
      case KeyType::JsonArray: {
        if (isBlank(text)) return Value(std::string("[]"));
        json::JsonReader reader;
        Result<json::JsonCursor> root =
            parseJsonRoot(reader, text, json::JsonKind::Array, "a JSON array of objects");
        if (!root) return root.error();
        std::optional<std::string> arr = readObjectArray(reader, *root);
        if (!arr) return Error(reader.error());
        return Value(std::move(*arr));
      }
    }
    return Error("internal error: unknown key type");
  }();
  if (!parsed) {
    // A parse error quotes the text; a secret's text must not be shown.
    if (key.secret) return Error("not a valid value (not shown: secret)");
    return parsed;
  }
  Status s = checkValue(key, *parsed);
  if (!s) return s.error();
  return parsed;
}

namespace {

// A config-file member for `key`. Errors are recorded on the reader with the
// member's path; std::nullopt then.
std::optional<Value> readFileValue(const KeyDef& key, const json::JsonReader& reader,
                                   const json::JsonCursor& c) {
  std::optional<Value> out;
  switch (key.type) {
    case KeyType::String: {
      std::string s;
      if (c.get(s)) out = Value(std::move(s));
      break;
    }
    case KeyType::Bool: {
      bool b = false;
      if (c.get(b)) out = Value(b);
      break;
    }
    case KeyType::Int: {
      int64_t i = 0;
      if (c.get(i)) out = Value(i);
      break;
    }
    case KeyType::Duration: {
      if (key.bareSeconds && c.kind() == json::JsonKind::Integer) {
        int64_t secs = 0;
        if (!c.get(secs)) break;
        Result<std::chrono::nanoseconds> d = secondsToDuration(secs, std::to_string(secs));
        if (!d) {
          c.fail(d.message());
          break;
        }
        out = Value(*d);
        break;
      }
      if (c.kind() != json::JsonKind::String) {
        c.fail("expected a duration string such as \"10s\"");
        break;
      }
      std::string_view s;
      c.get(s);
      Result<std::chrono::nanoseconds> d = parseDurationText(key, s);
      if (!d) {
        c.fail(d.message());
        break;
      }
      out = Value(*d);
      break;
    }
    case KeyType::Memory: {
      if (c.kind() == json::JsonKind::Integer) {
        int64_t bytes = 0;
        if (!c.get(bytes)) break;
        if (bytes <= 0) {
          c.fail("must be greater than 0");
          break;
        }
        out = Value(bytes);
        break;
      }
      if (c.kind() != json::JsonKind::String) {
        c.fail("expected a quantity string such as \"128Mi\" or a number of bytes");
        break;
      }
      std::string_view s;
      c.get(s);
      Result<int64_t> m = parseMemoryBytes(s);
      if (!m) {
        c.fail(m.message());
        break;
      }
      out = Value(*m);
      break;
    }
    case KeyType::StringList: {
      std::optional<StringList> list = readStringList(reader, c);
      if (list) out = Value(std::move(*list));
      break;
    }
    case KeyType::StringListMap: {
      std::optional<StringListMap> map = readStringListMap(reader, c);
      if (map) out = Value(std::move(*map));
      break;
    }
    case KeyType::JsonArray: {
      std::optional<std::string> arr = readObjectArray(reader, c);
      if (arr) out = Value(std::move(*arr));
      break;
    }
  }
  if (!out || !reader.ok()) return std::nullopt;
  Status s = checkValue(key, *out);
  if (!s) {
    c.fail(s.message());
    return std::nullopt;
  }
  return out;
}

struct FlagValue {
  size_t key;
  std::string spelling;  // "--max-alloc-percent", as typed (no "=value")
  std::string value;
};

struct ParsedArgs {
  bool help = false;
  std::optional<std::string> configFile;
  std::vector<FlagValue> values;
  std::optional<Error> error;  // the first one
};

bool isBoolLiteral(std::string_view s) {
  const std::string lower = normalizeName(s);
  return lower == "true" || lower == "false" || lower == "1" || lower == "0";
}

// One pass over argv. Errors are kept, not returned, so that a --help
// anywhere still wins over a bad argument before it.
ParsedArgs parseArgs(const Schema& schema, int argc, const char* const* argv) {
  ParsedArgs p;
  auto fail = [&](std::string message) {
    if (!p.error) p.error = Error(std::move(message));
  };
  auto arg = [&](int i) { return std::string_view(argv[i] != nullptr ? argv[i] : ""); };
  // The next argument as the value of `flag`, unless it is missing or looks
  // like another flag.
  auto takeNext = [&](int& i, std::string_view flag) -> std::optional<std::string> {
    if (i + 1 >= argc || arg(i + 1).starts_with("--")) {
      fail("flag " + std::string(flag) + " needs a value");
      return std::nullopt;
    }
    ++i;
    return std::string(arg(i));
  };

  for (int i = 1; i < argc; ++i) {
    const std::string_view a = arg(i);
    if (a == "--") {
      if (i + 1 < argc) fail("unexpected argument " + quoted(arg(i + 1)));
      break;
    }
    if (a == "-h" || a == "--help") {
      p.help = true;
      continue;
    }
    if (a == "-c" || a == "--config") {
      if (std::optional<std::string> v = takeNext(i, a)) p.configFile = std::move(*v);
      continue;
    }
    if (a.starts_with("--config=")) {
      p.configFile = std::string(a.substr(9));
      continue;
    }
    if (!a.starts_with("--")) {
      if (a.size() > 1 && a.front() == '-') {
        fail("unknown flag " + std::string(a) + " (see --help)");
      } else {
        fail("unexpected argument " + quoted(a));
      }
      continue;
    }
    const size_t eq = a.find('=');
    const std::string spelling(a.substr(0, eq));
    const KeyDef* key = schema.find(normalizeName(spelling.substr(2)));
    if (key == nullptr) {
      // Only the name: what follows '=' may be a secret.
      fail("unknown flag " + spelling + " (see --help)");
      continue;
    }
    FlagValue fv{static_cast<size_t>(key - schema.keys().data()), spelling, ""};
    if (eq != std::string_view::npos) {
      fv.value = std::string(a.substr(eq + 1));
    } else if (key->type == KeyType::Bool) {
      // "--flag" alone means true; "--flag false" works too, because no
      // positional argument could be meant there.
      if (i + 1 < argc && isBoolLiteral(arg(i + 1))) {
        fv.value = std::string(arg(++i));
      } else {
        fv.value = "true";
      }
    } else {
      std::optional<std::string> v = takeNext(i, spelling);
      if (!v) continue;
      fv.value = std::move(*v);
    }
    p.values.push_back(std::move(fv));
  }
  return p;
}

std::string typeLabel(const KeyDef& key) {
  switch (key.type) {
    case KeyType::String:
      return "STRING";
    case KeyType::Bool:
      return "BOOL";
    case KeyType::Int:
      if (key.min != kMinI64 && key.max != kMaxI64) {
        return "INT (" + std::to_string(key.min) + ".." + std::to_string(key.max) + ")";
      }
      if (key.min != kMinI64) return "INT (>= " + std::to_string(key.min) + ")";
      return hasRange(key) ? "INT (<= " + std::to_string(key.max) + ")" : "INT";
    case KeyType::Duration:
      if (key.min == 1 && key.max == kMaxI64) return "DURATION (> 0)";
      if (hasRange(key)) {
        return "DURATION (" + formatBound(key, std::max<int64_t>(key.min, 0)) + ".." +
               formatBound(key, key.max) + ")";
      }
      return "DURATION";
    case KeyType::Memory:
      return "QUANTITY";
    case KeyType::StringList:
      return "LIST";
    case KeyType::StringListMap:
      return "MAP";
    case KeyType::JsonArray:
      return "JSON";
  }
  return "VALUE";
}

// Appends `items` joined by `sep`, wrapped at `width` columns between items
// (an item is never split), each line indented by `indent`.
void appendWrapped(std::string& out, const std::vector<std::string>& items, std::string_view sep,
                   size_t indent, size_t width) {
  const std::string pad(indent, ' ');
  size_t col = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& item = items[i];
    const size_t sepLen = i + 1 < items.size() ? sep.size() : 0;
    if (col == 0) {
      out += pad;
      col = indent;
    } else if (col + 1 + item.size() + sepLen > width) {
      out += "\n" + pad;
      col = indent;
    } else {
      out += ' ';
      ++col;
    }
    out += item;
    col += item.size();
    if (sepLen != 0) {
      out += sep;
      col += sepLen;
    }
  }
  out += '\n';
}

// Prose wraps between words.
void appendWrappedText(std::string& out, std::string_view text, size_t indent, size_t width) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) words.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  appendWrapped(out, words, "", indent, width);
}

}  // namespace

std::string Schema::helpText() const {
  constexpr size_t kWidth = 80;
  constexpr size_t kOptionIndent = 22;
  std::string out;
  out += "Usage: " + info_.program + " [-c FILE] [--key-name VALUE]...\n";
  if (!info_.description.empty()) out += info_.description + "\n";
  out += "\nOptions:\n";
  out += "  -c, --config FILE   ";
  std::string configHelp = "JSON config file (none by default)";
  if (!info_.defaultConfigFile.empty()) {
    configHelp = "JSON config file (default " + info_.defaultConfigFile +
                 "; a missing default file is fine)";
  }
  std::string wrapped;
  appendWrappedText(wrapped, configHelp, kOptionIndent, kWidth);
  out += wrapped.substr(kOptionIndent);  // the first line follows the option
  out += "  -h, --help          print this help and exit\n\n";
  appendWrappedText(out,
                    "Every key can be set in the config file (a JSON object of \"key\": value), "
                    "in the environment (" +
                        info_.envPrefix +
                        "KEY) or by a flag (--key-name VALUE, --key-name=VALUE or --key_name "
                        "VALUE). Precedence: flag > environment > config file > default.",
                    0, kWidth);
  appendWrappedText(out,
                    "Durations: 250ms, 10s, 4m, 1h30m. Quantities: 128Mi, 1Gi, 128M, 1G or "
                    "bytes. Lists: a,b,c or [\"a\",\"b\"]. Maps: JSON objects of string lists. "
                    "JSON: arrays of objects.",
                    0, kWidth);
  out += "\nKeys:\n";
  for (const KeyDef& key : keys_) {
    out += "  " + flagName(key) + " " + typeLabel(key) + "\n";
    if (!key.help.empty()) appendWrappedText(out, key.help, 6, kWidth);
    std::string def;
    if (key.defaultText.empty()) {
      def = "none";
    } else if (key.secret) {
      def = "(secret, not shown)";
    } else {
      def = key.defaultText;
    }
    std::string env = envName(key);
    for (const std::string& alias : key.envAliases) env += " or " + alias;
    std::vector<std::string> meta = {"default: " + def, "env: " + env, "file key: " + key.name};
    if (key.secret) meta.push_back("secret: its value is never printed");
    appendWrapped(out, meta, ";", 6, kWidth);
  }
  return out;
}

Result<LoadedValues> Schema::load(int argc, const char* const* argv, const EnvLookup& env,
                                  const FileReader& readFile) const {
  ParsedArgs args = parseArgs(*this, argc, argv);
  LoadedValues out;
  if (args.help) {
    out.helpRequested = true;
    out.helpText = helpText();
    return out;
  }
  if (args.error) return std::move(*args.error);

  const size_t n = keys_.size();
  out.values.resize(n);
  std::vector<Source> sources(n);
  std::vector<std::string> texts(n);

  auto invalid = [&](const KeyDef& key, const Source& src, const Error& e) {
    return Error("invalid value for " + key.name + " (from " + src.describe() + "): " + e.message);
  };

  // 1. Defaults.
  for (size_t i = 0; i < n; ++i) {
    Result<Value> v = parseText(keys_[i], keys_[i].defaultText);
    if (!v) return Error("invalid default for " + keys_[i].name + ": " + v.message());
    out.values[i] = std::move(*v);
    texts[i] = keys_[i].defaultText;
  }

  // 2. The config file.
  const bool explicitFile = args.configFile.has_value();
  const std::string path = explicitFile ? *args.configFile : info_.defaultConfigFile;
  if (!path.empty()) {
    const std::string prefix = "config file " + path + ": ";
    Result<std::optional<std::string>> content = readFile(path);
    if (!content) return Error(prefix + content.message());
    if (!content->has_value()) {
      if (explicitFile) return Error(prefix + "not found");
    } else {
      out.configFile = path;
      const std::string& text = **content;
      // An empty file is an empty configuration: `touch`ing the file is not
      // worth a failed start.
      if (!isBlank(text)) {
        json::JsonReader reader;
        Result<json::JsonCursor> root = reader.parse(text);
        if (!root) return Error(prefix + root.message());
        if (root->kind() != json::JsonKind::Object) {
          return Error(prefix + "expected a JSON object of keys and values");
        }
        std::optional<Error> fileError;
        std::vector<bool> seen(n, false);
        root->forEachMember([&](std::string_view name, const json::JsonCursor& c) {
          if (fileError || !reader.ok()) return;
          const KeyDef* key = find(name);
          if (key == nullptr) {
            std::string msg = "unknown key " + quoted(name);
            // A typo or a kebab-case spelling: point at the key meant.
            const std::string norm = normalizeName(name);
            for (const KeyDef& k : keys_) {
              if (k.name == norm || (norm.size() > 3 && editDistance(norm, k.name) <= 2)) {
                msg += " (did you mean \"" + k.name + "\"?)";
                break;
              }
            }
            fileError = Error(prefix + msg);
            return;
          }
          const size_t i = static_cast<size_t>(key - keys_.data());
          if (seen[i]) {
            fileError = Error(prefix + "duplicate key " + quoted(name));
            return;
          }
          seen[i] = true;
          if (!c.present()) return;  // null: keep the default
          std::optional<Value> v = readFileValue(*key, reader, c);
          if (!v) return;  // recorded on the reader
          out.values[i] = std::move(*v);
          sources[i] = Source{SourceKind::File, path};
          if (c.kind() == json::JsonKind::String) {
            std::string s;
            c.get(s);
            texts[i] = std::move(s);
          } else {
            texts[i] = jsonText(c);
          }
        });
        if (fileError) return std::move(*fileError);
        if (!reader.ok()) return Error(prefix + reader.error());
      }
    }
  }

  // 3. The environment: the prefixed name first, then the aliases.
  for (size_t i = 0; i < n; ++i) {
    const KeyDef& key = keys_[i];
    std::vector<std::string> names{envName(key)};
    names.insert(names.end(), key.envAliases.begin(), key.envAliases.end());
    for (const std::string& name : names) {
      std::optional<std::string> text = env(name);
      if (!text) continue;
      Source src{SourceKind::Env, name};
      Result<Value> v = parseText(key, *text);
      if (!v) return invalid(key, src, v.error());
      out.values[i] = std::move(*v);
      sources[i] = std::move(src);
      texts[i] = std::move(*text);
      break;
    }
  }

  // 4. Flags, in order: a repeated flag's last value wins.
  for (FlagValue& fv : args.values) {
    const KeyDef& key = keys_[fv.key];
    Source src{SourceKind::Flag, fv.spelling};
    Result<Value> v = parseText(key, fv.value);
    if (!v) return invalid(key, src, v.error());
    out.values[fv.key] = std::move(*v);
    sources[fv.key] = std::move(src);
    texts[fv.key] = std::move(fv.value);
  }

  out.effective.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string text = std::move(texts[i]);
    if (keys_[i].secret && !text.empty()) text = "(redacted)";
    out.effective.push_back(EffectiveSetting{keys_[i].name, std::move(text), sources[i]});
  }
  return out;
}

}  // namespace sbx::config
