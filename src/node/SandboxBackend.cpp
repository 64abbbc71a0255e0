#include "node/SandboxBackend.h"

#include "node/Admission.h"

namespace sbx::node {

std::vector<net::HostPort> hostPorts(const SandboxSpec& spec) {
  std::vector<net::HostPort> out;
  for (const auto& p : spec.ports) {
    if (p.hostPort > 0) out.push_back({static_cast<uint16_t>(p.hostPort), p.protocol});
  }
  return out;
}

Status admitAndBook(Admission& admission, net::PortTable& ports, const SandboxSpec& spec) {
  Status admitted = admission.admit(spec.id, spec.totalCpuMillis(), spec.totalMemoryBytes());
  if (!admitted.ok()) return Error(admitted.message(), 400);
  Status ported = ports.reserve(spec.id, hostPorts(spec));
  if (!ported.ok()) {
    admission.release(spec.id);
    return Error(ported.message(), 400);
  }
  return Status();
}

}  // namespace sbx::node
