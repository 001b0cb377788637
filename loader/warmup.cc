#include "loader/warmup.h"

#include <array>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace inferd::loader {
namespace {

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}

uint64_t ReadLe64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint32_t ReadLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
void AppendLe(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) crc = table[(crc ^ c) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

absl::StatusOr<std::vector<std::string>> ParseTfRecords(std::string_view file, int max_records) {
  std::vector<std::string> records;
  size_t pos = 0;
  while (pos < file.size()) {
    const int index = static_cast<int>(records.size());
    if (index >= max_records) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than ", max_records, " records (the maximum)"));
    }
    if (file.size() - pos < 12) {
      return absl::DataLossError(
          absl::StrCat("record ", index, " at byte ", pos, ": truncated header"));
    }
    const uint64_t length = ReadLe64(file.data() + pos);
    if (MaskCrc(Crc32c(file.substr(pos, 8))) != ReadLe32(file.data() + pos + 8)) {
      return absl::DataLossError(
          absl::StrCat("record ", index, " at byte ", pos, ": length checksum mismatch"));
    }
    if (length > file.size() - pos - 12 || file.size() - pos - 12 - length < 4) {
      return absl::DataLossError(absl::StrCat("record ", index, " at byte ", pos,
                                              ": truncated data (length ", length, ")"));
    }
    std::string_view data = file.substr(pos + 12, length);
    if (MaskCrc(Crc32c(data)) != ReadLe32(file.data() + pos + 12 + length)) {
      return absl::DataLossError(
          absl::StrCat("record ", index, " at byte ", pos, ": data checksum mismatch"));
    }
    records.emplace_back(data);
    pos += 12 + length + 4;
  }
  return records;
}

std::string WriteTfRecords(const std::vector<std::string>& records) {
  std::string out;
  for (const std::string& r : records) {
    std::string len;
    AppendLe(r.size(), 8, &len);
    out += len;
    AppendLe(MaskCrc(Crc32c(len)), 4, &out);
    out += r;
    AppendLe(MaskCrc(Crc32c(r)), 4, &out);
  }
  return out;
}

absl::StatusOr<int> ForEachWarmupRecord(
    const std::filesystem::path& version_dir,
    const std::function<absl::Status(const tensorflow::serving::PredictionLog&)>& fn) {
  const std::filesystem::path path = version_dir / kWarmupFile;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  auto records = ParseTfRecords(bytes, kMaxWarmupRecords);
  if (!records.ok()) {
    return absl::Status(records.status().code(), absl::StrCat("warmup file ", path.string(), ": ",
                                                              records.status().message()));
  }
  for (size_t i = 0; i < records->size(); ++i) {
    tensorflow::serving::PredictionLog log;
    if (!log.ParseFromString((*records)[i])) {
      return absl::InvalidArgumentError(absl::StrCat("warmup file ", path.string(), ": record ",
                                                     i, " is not a PredictionLog"));
    }
    if (absl::Status s = fn(log); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("warmup record ", i, ": ", s.message()));
    }
  }
  return static_cast<int>(records->size());
}

}  // namespace inferd::loader
