#pragma once
// Store: where the control plane keeps its nodes and sandboxes durably. A
// record is an opaque document (JSON text encoded by the caller) under an id
// in a fixed collection. SqliteStore is the implementation; a distributed
// store can implement the same interface later.
//
// Threading: implementations are not thread-safe. One thread at a time calls
// them (any thread, one after another); StoreWriter guarantees it by keeping
// at most one job in flight. Every method may block on disk I/O: call them
// from a worker, or from the loop only at startup, before serving.

#include <string>
#include <utility>
#include <vector>

#include "base/Result.h"

namespace sbx::orch {

// The collections every Store knows; any other name is refused.
inline constexpr char kNodesCollection[] = "nodes";
inline constexpr char kSandboxesCollection[] = "sandboxes";

struct StoreChange {
  enum class Kind { Put, Erase };
  Kind kind = Kind::Put;
  std::string collection;  // "nodes" or "sandboxes"
  std::string id;
  std::string doc;  // Put: the document (JSON text); Erase: unused

  static StoreChange put(std::string collection, std::string id, std::string doc) {
    return StoreChange{Kind::Put, std::move(collection), std::move(id), std::move(doc)};
  }
  static StoreChange erase(std::string collection, std::string id) {
    return StoreChange{Kind::Erase, std::move(collection), std::move(id), {}};
  }
};

struct StoreDocument {
  std::string id;
  std::string doc;
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens (creating the file and its directory, mode 0700 dir / 0600 file)
  // and brings the schema to the latest version.
  virtual Status open() = 0;
  // Every document of a collection, ordered by id (byte order).
  virtual Result<std::vector<StoreDocument>> loadAll(const std::string& collection) = 0;
  // All changes in ONE transaction, in order: all or none. Durable when it
  // returns ok. Erasing a missing id is not an error.
  virtual Status apply(const std::vector<StoreChange>& changes) = 0;
};

}  // namespace sbx::orch
