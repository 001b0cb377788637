#include "loader/version_policy.h"

#include <algorithm>
#include <system_error>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace inferd::loader {
namespace fs = std::filesystem;

absl::StatusOr<std::map<int64_t, fs::path>> ScanVersionDirectories(const fs::path& base_path) {
  std::error_code ec;
  fs::directory_iterator it(base_path, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("cannot read model base path ", base_path.string(), ": ", ec.message()));
  }
  std::vector<fs::directory_entry> entries;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("error listing ", base_path.string(), ": ", ec.message()));
    }
    entries.push_back(*it);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path() < b.path(); });
  std::map<int64_t, fs::path> versions;
  for (const fs::directory_entry& e : entries) {
    std::error_code dir_ec;
    if (!e.is_directory(dir_ec)) continue;
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    int64_t version;
    if (!absl::SimpleAtoi(name, &version)) continue;  // overflows int64
    versions.emplace(version, e.path());
  }
  return versions;
}

std::set<int64_t> AspiredVersions(const VersionPolicy& policy, const std::set<int64_t>& found) {
  switch (policy.policy_choice_case()) {
    case VersionPolicy::kAll:
      return found;
    case VersionPolicy::kSpecific: {
      std::set<int64_t> out;
      for (int64_t v : policy.specific().versions()) {
        if (found.count(v)) out.insert(v);
      }
      return out;
    }
    case VersionPolicy::kLatest:
    case VersionPolicy::POLICY_CHOICE_NOT_SET:
    default: {
      uint32_t n = policy.has_latest() ? policy.latest().num_versions() : 1;
      if (n == 0) n = 1;
      std::set<int64_t> out;
      for (auto it = found.rbegin(); it != found.rend() && out.size() < n; ++it) out.insert(*it);
      return out;
    }
  }
}

uint64_t FingerprintDirectory(const fs::path& dir) {
  // FNV-1a over (relative path, size, mtime) of every regular file, in sorted order.
  std::vector<std::string> records;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 8) {
      it.disable_recursion_pending();
      continue;
    }
    std::error_code e2;
    if (!it->is_regular_file(e2)) continue;
    auto size = it->file_size(e2);
    auto mtime = it->last_write_time(e2).time_since_epoch().count();
    records.push_back(absl::StrCat(fs::relative(it->path(), dir, e2).string(), "|", size, "|",
                                   mtime));
  }
  std::sort(records.begin(), records.end());
  uint64_t h = 1469598103934665603ull;
  for (const std::string& r : records) {
    for (unsigned char c : r) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace inferd::loader
