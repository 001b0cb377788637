// Version directories and version policies (TF Serving's FileSystemStoragePathSource rules).
#ifndef INFERD_LOADER_VERSION_POLICY_H_
#define INFERD_LOADER_VERSION_POLICY_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>

#include "absl/status/statusor.h"
#include "tensorflow_serving/config/file_system_storage_path_source.pb.h"

namespace inferd::loader {

using VersionPolicy = tensorflow::serving::FileSystemStoragePathSourceConfig::ServableVersionPolicy;

// Children of `base_path` whose names parse as non-negative int64 (leading zeros allowed, as in
// TF Serving: "007" is version 7), mapped to their paths. Other entries are ignored. When two
// names parse to the same version, the first in name order wins. Fails if base_path cannot be
// read.
absl::StatusOr<std::map<int64_t, std::filesystem::path>> ScanVersionDirectories(
    const std::filesystem::path& base_path);

// The versions a policy selects from those found: latest{N} (default N = 1) takes the N highest,
// all{} takes every one, specific{} takes the listed ones that exist.
std::set<int64_t> AspiredVersions(const VersionPolicy& policy, const std::set<int64_t>& found);

// A cheap fingerprint of a version directory's files (names, sizes, modification times), so a
// version that failed to load is retried only when its files change.
uint64_t FingerprintDirectory(const std::filesystem::path& dir);

}  // namespace inferd::loader

#endif  // INFERD_LOADER_VERSION_POLICY_H_
