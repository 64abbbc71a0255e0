#pragma once
// SandboxBackend: what the node API (SandboxApi) and sbxlet's main need of
// whatever runs the sandboxes. Two implementations:
//   Provisioner  containerd + CNI + firewall: real sandboxes (runtime runc,
//                runsc);
//   SimRuntime   a hollow node for scale tests (runtime "sim"): the same
//                admission, address and host-port accounting, state files
//                and phases, but nothing runs.
//
// Loop-thread only.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/Result.h"
#include "net/PortTable.h"
#include "node/SandboxState.h"

namespace sbx::node {

class Admission;
class SandboxStore;

// The host ports a spec publishes (those with hostPort > 0).
std::vector<net::HostPort> hostPorts(const SandboxSpec& spec);

// A new sandbox's CPU, memory and address admission and its host ports,
// booked together or not at all; the error (code 400) says what did not fit.
Status admitAndBook(Admission& admission, net::PortTable& ports, const SandboxSpec& spec);

class SandboxBackend {
 public:
  virtual ~SandboxBackend() = default;

  // Loads the state files at start; `done(problems)` lists unreadable ones.
  virtual void recover(std::function<void(std::vector<std::string>)> done) = 0;
  // Admits and persists a new sandbox, then answers `accepted` (phase
  // creating, or a 4xx error) and provisions it in the background.
  virtual void create(SandboxSpec spec,
                      std::function<void(Result<const SandboxState*>)> accepted) = 0;
  // Idempotent delete; `done` runs once everything the sandbox owned is
  // released.
  virtual void remove(const std::string& id, std::function<void(Status)> done) = 0;
  // The sandbox refreshed from its runtime; error code 404 for an unknown id.
  virtual void refresh(const std::string& id,
                       std::function<void(Result<const SandboxState*>)> done) = 0;
  // Compares what sbxlet knows with what exists and repairs drift.
  virtual void reconcile(std::function<void(Status)> done) = 0;

  virtual const SandboxState* find(const std::string& id) const = 0;
  virtual const std::map<std::string, SandboxState>& sandboxes() const = 0;
  virtual SandboxStore& store() = 0;
};

}  // namespace sbx::node
