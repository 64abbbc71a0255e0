#pragma once
// ConfigSchema: a daemon's configuration as a list of typed keys, loaded from
// defaults, a JSON config file, environment variables and command-line flags.
// sbxlet and sandboxd-o describe their keys with it; the loading rules are
// the same for both (SPEC §1, §2 "Configuration"):
//
//   precedence   flag > environment > config file > default
//   file         -c FILE / --config FILE; a JSON object whose members are the
//                keys (snake_case). An unknown member is an error (typos are
//                caught at start, not silently ignored). A null member leaves
//                the key as it was; an empty file is an empty object. A
//                missing default file is fine, a missing -c file an error.
//   environment  <PREFIX><KEY upper-cased> (SBXLET_PROVISION_TIMEOUT), plus
//                per-key aliases kept for backward compatibility
//                (SANDBOX_LOG_DIR); when both are set the prefixed name wins.
//   flags        --key-name VALUE, --key-name=VALUE, --key_name VALUE;
//                -h/--help (wins over any other argument; nothing is read);
//                "--" ends the flags. A value that starts with "--" must use
//                the --key=VALUE form (so a forgotten value does not swallow
//                the next flag). A bool flag alone means true.
//
// Every value given anywhere is parsed and validated, even one a later
// source overrides: an invalid value is a configuration bug wherever it is.
// Errors name the key and where the value came from:
//   invalid value for provision_timeout (from SBXLET_PROVISION_TIMEOUT): invalid duration "4x": ...
//   invalid value for max_alloc_percent (from --max-alloc-percent): must be between 1 and 100
//   config file /x.json: max_alloc_percent: expected integer
//   config file /x.json: unknown key "max_alloc_precent" (did you mean "max_alloc_percent"?)
//   unknown flag --bogus (see --help)
//
// Value syntax from the environment and flags (text):
//   string    as is           bool      true, false, 1, 0
//   int       decimal         duration  250ms, 10s, 4m, 1h30m ("0" is zero)
//   memory    128Mi, 1Gi, 128M, 1G, or bytes
//   list      a,b,c (items trimmed, empty items dropped) or a JSON array
//   map       a JSON object of string arrays: {"docker.io":["http://127.0.0.1:5000"]}
//   json      a JSON array of objects (kept as its compact JSON text)
// Empty text is an empty list, map or array.
// In the file the same keys take JSON values: strings for string, duration
// and memory keys (memory also takes an integer number of bytes), booleans,
// integers, arrays of strings, objects of string arrays, arrays of objects.
//
// Secret keys (secret()) never have their value printed: --help shows no
// value, EffectiveSetting::text is redacted, and the loader's own error
// messages do not quote the value (a validator must not either).
//
// Not thread-safe; a schema is built and loaded once at start.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "base/Result.h"

namespace sbx::config {

enum class KeyType { String, Bool, Int, Duration, Memory, StringList, StringListMap, JsonArray };

using StringList = std::vector<std::string>;
using StringListMap = std::map<std::string, StringList>;

// One parsed value. Int and Memory hold int64_t (Memory in bytes); String and
// JsonArray hold std::string (JsonArray: the array's compact JSON text).
using Value =
    std::variant<std::string, bool, int64_t, std::chrono::nanoseconds, StringList, StringListMap>;

// A key-specific check, run after the value parsed as its type. The message
// should say what is wrong without the key's name (the loader adds it and the
// value's source), and must not quote the value of a secret key.
using Validator = std::function<Status(const Value&)>;

struct KeyDef {
  std::string name;  // snake_case: "provision_timeout"
  KeyType type = KeyType::String;
  // The default in the text syntax above ("4m", "128Mi", "[]", "90"). It is
  // parsed and validated like any other value, so a bad default fails load().
  std::string defaultText;
  std::string help;  // one line
  // Inclusive bounds for Int (the value), Duration (nanoseconds) and Memory
  // (bytes).
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
  bool secret = false;
  // Duration keys: a plain integer (text "5", or a JSON number) means seconds.
  // For keys that were once flags taking seconds (--shutdown-grace 5).
  bool bareSeconds = false;
  std::vector<std::string> envAliases;  // checked after <PREFIX><KEY>, in order
  std::vector<Validator> validators;    // run in order; the first error wins
};

enum class SourceKind { Default, File, Env, Flag };

struct Source {
  SourceKind kind = SourceKind::Default;
  // File: the path; Env: the variable's name; Flag: the flag as spelled
  // ("--max-alloc-percent"); Default: empty.
  std::string name;
  // "default", "config file /x.json", "SBXLET_X", "--x".
  std::string describe() const;
};

// The value a key ended up with and where it came from, e.g. for a start-up
// log line. `text` is the value as given (JSON text for non-string file
// values); for a secret key it is "" when unset and "(redacted)" otherwise.
struct EffectiveSetting {
  std::string key;
  std::string text;
  Source source;
};

// Looks up an environment variable; std::nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
// Reads a whole file: std::nullopt when it does not exist, an error message
// ("cannot read: Permission denied") for any other failure.
using FileReader = std::function<Result<std::optional<std::string>>(const std::string& path)>;

// The process environment (getenv).
EnvLookup processEnv();
// The real filesystem.
Result<std::optional<std::string>> readFileFromDisk(const std::string& path);

struct SchemaInfo {
  std::string program;      // "sbxlet": the usage line of --help
  std::string description;  // one line for --help
  std::string envPrefix;    // "SBXLET_"
  // Read when no -c/--config is given; a missing default file is fine, a
  // missing file given explicitly is an error. Empty: no default file.
  std::string defaultConfigFile;
};

// What the type-erased loader produces: one value per key, in schema order.
struct LoadedValues {
  bool helpRequested = false;
  std::string helpText;       // set when helpRequested
  std::string configFile;     // the file that was read; "" when none was
  std::vector<Value> values;  // empty when helpRequested
  std::vector<EffectiveSetting> effective;
};

// The schema without a target type: keys, parsing, help text, loading.
// ConfigSchema<T> below binds the keys to the fields of a struct.
class Schema {
 public:
  explicit Schema(SchemaInfo info);

  // Adds a key (its name must be new, snake_case, and not "config" or
  // "help"). Returns its index.
  size_t add(KeyDef def);
  KeyDef& key(size_t index) { return keys_[index]; }
  const std::vector<KeyDef>& keys() const { return keys_; }
  const SchemaInfo& info() const { return info_; }
  // The key named `name` (snake_case), or nullptr.
  const KeyDef* find(std::string_view name) const;

  // "SBXLET_PROVISION_TIMEOUT"
  std::string envName(const KeyDef& key) const;
  // "--provision-timeout"
  static std::string flagName(const KeyDef& key);

  // Every key with its flag, type, default (never a secret's), environment
  // variables and help, plus the usage and the rules above.
  std::string helpText() const;

  // Parses `text` as the env/flags would give it for `key`, then validates.
  // The message has neither the key nor the source (the caller adds them).
  Result<Value> parseText(const KeyDef& key, std::string_view text) const;

  // argv[0] is the program and is skipped. --help returns helpRequested
  // (and reads nothing) even when other arguments are bad.
  Result<LoadedValues> load(int argc, const char* const* argv, const EnvLookup& env,
                            const FileReader& readFile) const;

 private:
  SchemaInfo info_;
  std::vector<KeyDef> keys_;
};

// The outcome of ConfigSchema<T>::load(): either a configuration or a help
// request (print helpText to stdout and exit 0).
template <class T>
struct LoadOutcome {
  bool helpRequested = false;
  std::string helpText;
  T config{};
  std::string configFile;  // the file that was read; "" when none was
  std::vector<EffectiveSetting> effective;
};

// A schema whose keys write into the fields of a T:
//
//   ConfigSchema<OrchConfig> s({"sandboxd-o", "control plane", "ORCH_", "/var/lib/..."});
//   s.duration("heartbeat_interval", "10s", "how often nodes are probed",
//              &OrchConfig::heartbeatInterval).positive();
//   s.integer("host_port_min", 10000, 1, 65535, "lowest host port", &OrchConfig::hostPortMin);
//   auto outcome = s.load(argc, argv, config::processEnv(), config::readFileFromDisk);
//
// The typed adders return a KeyOptions<V> for key-specific options, where V
// is the parsed value's type (std::string, bool, int64_t,
// std::chrono::nanoseconds, StringList, StringListMap).
template <class T>
class ConfigSchema {
 public:
  template <class V>
  class KeyOptions {
   public:
    // A key-specific check on the parsed value (see Validator).
    KeyOptions& validate(std::function<Status(const V&)> check) {
      def().validators.push_back([check = std::move(check)](const Value& v) -> Status {
        const V* typed = std::get_if<V>(&v);
        if (typed == nullptr) return Error("internal error: value of unexpected type");
        return check(*typed);
      });
      return *this;
    }
    // Another environment variable for this key (backward compatibility).
    KeyOptions& envAlias(std::string name) {
      def().envAliases.push_back(std::move(name));
      return *this;
    }
    // Never print the value (see the top of this file).
    KeyOptions& secret() {
      def().secret = true;
      return *this;
    }
    // Durations and quantities: the value must be greater than zero.
    KeyOptions& positive() requires(std::is_same_v<V, std::chrono::nanoseconds> ||
                                    std::is_same_v<V, int64_t>) {
      def().min = 1;
      return *this;
    }
    // Inclusive bounds (for durations, in their own unit).
    KeyOptions& range(V min, V max) requires(std::is_same_v<V, std::chrono::nanoseconds> ||
                                             std::is_same_v<V, int64_t>) {
      if constexpr (std::is_same_v<V, std::chrono::nanoseconds>) {
        def().min = min.count();
        def().max = max.count();
      } else {
        def().min = min;
        def().max = max;
      }
      return *this;
    }
    // Durations: also accept a plain number of seconds ("5").
    KeyOptions& acceptBareSeconds() requires std::is_same_v<V, std::chrono::nanoseconds> {
      def().bareSeconds = true;
      return *this;
    }

   private:
    friend class ConfigSchema;
    KeyOptions(Schema* schema, size_t index) : schema_(schema), index_(index) {}
    KeyDef& def() { return schema_->key(index_); }

    Schema* schema_;
    size_t index_;
  };

  explicit ConfigSchema(SchemaInfo info) : schema_(std::move(info)) {}

  KeyOptions<std::string> string(std::string name, std::string defaultValue, std::string help,
                                 std::string T::*field) {
    return bindField<std::string>(KeyType::String, std::move(name), std::move(defaultValue),
                                  std::move(help), field);
  }
  KeyOptions<bool> boolean(std::string name, bool defaultValue, std::string help, bool T::*field) {
    return bindField<bool>(KeyType::Bool, std::move(name), defaultValue ? "true" : "false",
                           std::move(help), field);
  }
  // An integer in [min, max], stored in any integral field wide enough for
  // the range.
  template <class I>
  requires std::is_integral_v<I> KeyOptions<int64_t> integer(std::string name, int64_t defaultValue,
                                                             int64_t min, int64_t max,
                                                             std::string help, I T::*field) {
    if (min < static_cast<int64_t>(std::numeric_limits<I>::min())) std::abort();
    if (max > 0 &&
        static_cast<uint64_t>(max) > static_cast<uint64_t>(std::numeric_limits<I>::max())) {
      std::abort();  // the field cannot hold every value the range allows
    }
    KeyDef def;
    def.name = std::move(name);
    def.type = KeyType::Int;
    def.defaultText = std::to_string(defaultValue);
    def.help = std::move(help);
    def.min = min;
    def.max = max;
    size_t index = add(std::move(def), [field](T& target, const Value& v) {
      target.*field = static_cast<I>(std::get<int64_t>(v));
    });
    return KeyOptions<int64_t>(&schema_, index);
  }
  // defaultValue in duration syntax: "4m".
  KeyOptions<std::chrono::nanoseconds> duration(std::string name, std::string defaultValue,
                                                std::string help,
                                                std::chrono::nanoseconds T::*field) {
    return bindField<std::chrono::nanoseconds>(KeyType::Duration, std::move(name),
                                               std::move(defaultValue), std::move(help), field);
  }
  // A memory quantity in bytes; defaultValue in quantity syntax: "128Mi".
  KeyOptions<int64_t> memory(std::string name, std::string defaultValue, std::string help,
                             int64_t T::*field) {
    return bindField<int64_t>(KeyType::Memory, std::move(name), std::move(defaultValue),
                              std::move(help), field);
  }
  // defaultValue in list syntax: "" or "[]" for empty.
  KeyOptions<StringList> stringList(std::string name, std::string defaultValue, std::string help,
                                    StringList T::*field) {
    return bindField<StringList>(KeyType::StringList, std::move(name), std::move(defaultValue),
                                 std::move(help), field);
  }
  // defaultValue as a JSON object: "{}".
  KeyOptions<StringListMap> stringListMap(std::string name, std::string defaultValue,
                                          std::string help, StringListMap T::*field) {
    return bindField<StringListMap>(KeyType::StringListMap, std::move(name),
                                    std::move(defaultValue), std::move(help), field);
  }
  // A JSON array of objects, stored as its compact JSON text for the daemon
  // to decode (validate() it there to report errors with the key's name).
  KeyOptions<std::string> jsonArray(std::string name, std::string defaultValue, std::string help,
                                    std::string T::*field) {
    return bindField<std::string>(KeyType::JsonArray, std::move(name), std::move(defaultValue),
                                  std::move(help), field);
  }

  // Low level: any key with a custom setter (called once with the final
  // value, whose alternative matches def.type).
  size_t add(KeyDef def, std::function<void(T&, const Value&)> set) {
    size_t index = schema_.add(std::move(def));
    setters_.push_back(std::move(set));
    return index;
  }

  const Schema& schema() const { return schema_; }
  std::string helpText() const { return schema_.helpText(); }

  // Loads into a value-initialized T. See Schema::load.
  Result<LoadOutcome<T>> load(int argc, const char* const* argv, const EnvLookup& env,
                              const FileReader& readFile) const {
    Result<LoadedValues> loaded = schema_.load(argc, argv, env, readFile);
    if (!loaded) return loaded.error();
    LoadOutcome<T> out;
    out.helpRequested = loaded->helpRequested;
    out.helpText = std::move(loaded->helpText);
    out.configFile = std::move(loaded->configFile);
    out.effective = std::move(loaded->effective);
    if (!out.helpRequested) {
      for (size_t i = 0; i < setters_.size(); ++i) setters_[i](out.config, loaded->values[i]);
    }
    return out;
  }

 private:
  template <class V, class F>
  KeyOptions<V> bindField(KeyType type, std::string name, std::string defaultText, std::string help,
                          F T::*field) {
    KeyDef def;
    def.name = std::move(name);
    def.type = type;
    def.defaultText = std::move(defaultText);
    def.help = std::move(help);
    size_t index =
        add(std::move(def), [field](T& target, const Value& v) { target.*field = std::get<V>(v); });
    return KeyOptions<V>(&schema_, index);
  }

  Schema schema_;
  std::vector<std::function<void(T&, const Value&)>> setters_;
};

}  // namespace sbx::config
