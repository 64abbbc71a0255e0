#pragma once
// Resource quantities and durations as the API and the configuration spell
// them (Kubernetes-style).
//   CPU:      "250m", "1000m", "0.25", "0.5", "1", "2"     → millicores
//   Memory:   "128Mi", "1Gi", "128M", "1G", "512Ki", "1k", "1073741824" → bytes
//   Duration: "250ms", "10s", "4m", "1h", "1m30s"          → nanoseconds
// Errors say what was wrong with the text; callers prefix the field name.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/Result.h"

namespace sbx {

// Millicores. Fractions finer than 1m are an error ("0.0001").
Result<int64_t> parseCpuMillis(std::string_view text);
// Bytes. Binary suffixes Ki Mi Gi Ti Pi Ei, decimal k K M G T P E, or none;
// an optional decimal fraction ("1.5Gi") as long as the result is whole bytes.
Result<int64_t> parseMemoryBytes(std::string_view text);
// Go-style duration: a sequence of <number><unit> with units ns us ms s m h.
Result<std::chrono::nanoseconds> parseDuration(std::string_view text);

// "250m"
std::string formatCpuMillis(int64_t millis);
// "10s", "1m30s", "250ms"
std::string formatDuration(std::chrono::nanoseconds d);

}  // namespace sbx
