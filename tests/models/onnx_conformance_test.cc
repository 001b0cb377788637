// Runs ONNX's backend test suites (Debian's libonnx-testdata) through the runtime.
//
// Every test whose nodes all have a CPU kernel at the model's opset is attempted and must
// match the expected outputs within ONNX's tolerances (rtol 1e-3, atol 1e-7). Tests needing an
// unsupported op or opset, or string / bfloat16 / non-tensor values, are skipped with the
// reason. The attempted set is derived from the kernel registry, never from a list of names.
//
// With --device=cuda[:N] (builds with CUDA) every attempted test also runs on that device and
// its outputs must match the CPU's (rtol 1e-3, atol 1e-5) as well as the expected ones; a test
// the device cannot load (an op or attribute without a CUDA kernel) is listed as skipped with the
// reason. Without a usable device it prints why and exits 77 (ctest's SKIP_RETURN_CODE).
//
//   onnx_conformance_test [--device=cuda] [--precision=fp32|tf32] [SUITE_DIR...]
//   (default suites: node, pytorch-converted, pytorch-operator)
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/cpu/register_cpu_kernels.h"
#include "models/model.h"
#include "models/onnx_import.h"

namespace fs = std::filesystem;
using inferd::models::DType;
using inferd::models::Tensor;

namespace {

constexpr char kDataRoot[] = "/usr/share/libonnx-testdata/data";
constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-7;
constexpr double kDeviceAtol = 1e-5;  // device vs CPU: sums in another order

bool IsUnsupportedElemType(int t) {
  return t == onnx::TensorProto::STRING || t == onnx::TensorProto::BFLOAT16;
}

// Why the test cannot be attempted, or "" if it can.
std::string SkipReason(const onnx::ModelProto& model) {
  int64_t opset = -1;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  if (opset < 0) return "no ai.onnx opset";
  if (opset < inferd::models::kMinOpset) return absl::StrCat("opset ", opset, " below 7");
  const auto& g = model.graph();
  auto check_values = [](const auto& values) -> std::string {
    for (const auto& v : values) {
      if (!v.type().has_tensor_type()) return "non-tensor value (sequence/optional)";
      if (IsUnsupportedElemType(v.type().tensor_type().elem_type())) {
        return v.type().tensor_type().elem_type() == onnx::TensorProto::STRING ? "string tensors"
                                                                               : "bfloat16 tensors";
      }
    }
    return "";
  };
  for (const std::string& r : {check_values(g.input()), check_values(g.output())}) {
    if (!r.empty()) return r;
  }
  for (const auto& init : g.initializer()) {
    if (IsUnsupportedElemType(init.data_type())) return "string/bfloat16 initializer";
  }
  const auto& registry = inferd::models::CpuKernelRegistry();
  for (const auto& n : g.node()) {
    if (registry.Find(n.domain(), n.op_type(), opset) == nullptr) {
      return absl::StrCat("op ", n.domain().empty() ? "" : n.domain() + ".", n.op_type(),
                          " (opset ", opset, ") not supported");
    }
    for (const auto& a : n.attribute()) {
      if (a.type() == onnx::AttributeProto::TENSOR && IsUnsupportedElemType(a.t().data_type())) {
        return "string/bfloat16 attribute tensor";
      }
      if (a.name() == "to" && a.type() == onnx::AttributeProto::INT &&
          IsUnsupportedElemType(static_cast<int>(a.i()))) {
        return "cast to string/bfloat16";
      }
    }
  }
  return "";
}

// "" if `got` matches `want` within tolerance, else a description of the first mismatch.
std::string Compare(const Tensor& got, const Tensor& want) {
  if (got.dtype() != want.dtype()) {
    return absl::StrCat("dtype ", DTypeName(got.dtype()), " != expected ", DTypeName(want.dtype()));
  }
  if (got.shape() != want.shape()) {
    return absl::StrCat("shape ", inferd::models::ShapeToString(got.shape()), " != expected ",
                        inferd::models::ShapeToString(want.shape()));
  }
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double g = got.ElementAsDouble(i), w = want.ElementAsDouble(i);
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::isinf(w) && g == w) continue;
    if (!(std::abs(g - w) <= kAtol + kRtol * std::abs(w))) {
      return absl::StrCat("element ", i, ": ", g, " != expected ", w);
    }
  }
  return "";
}

// Device outputs against the CPU's, element by element.
std::string CompareToCpu(const Tensor& got, const Tensor& cpu) {
  if (got.dtype() != cpu.dtype() || got.shape() != cpu.shape()) {
    return absl::StrCat("device output ", inferd::models::DTypeName(got.dtype()),
                        inferd::models::ShapeToString(got.shape()), " != cpu ",
                        inferd::models::DTypeName(cpu.dtype()),
                        inferd::models::ShapeToString(cpu.shape()));
  }
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    const double g = got.ElementAsDouble(i), w = cpu.ElementAsDouble(i);
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::isinf(w) && g == w) continue;
    if (!(std::abs(g - w) <= kDeviceAtol + kRtol * std::abs(w))) {
      return absl::StrCat("device element ", i, ": ", g, " != cpu ", w);
    }
  }
  return "";
}

// Runs one test directory; "" on success, else the failure. With a device placement, the test
// also runs there and is compared with the CPU; `device_skip` receives why the device could not
// load it, if so.
std::string RunTest(const fs::path& dir, const onnx::ModelProto& proto,
                    const inferd::models::ExecutorOptions* device, std::string* device_skip) {
  auto model = inferd::models::Model::Load(dir / "model.onnx");
  if (!model.ok()) return absl::StrCat("load: ", model.status().message());
  std::unique_ptr<inferd::models::Model> on_device;
  if (device != nullptr) {
    inferd::models::LoadOptions options;
    options.executor = *device;
    auto loaded = inferd::models::Model::Load(dir / "model.onnx", options);
    if (!loaded.ok()) {
      if (loaded.status().code() != absl::StatusCode::kUnimplemented) {
        return absl::StrCat("device load: ", loaded.status().message());
      }
      *device_skip = std::string(loaded.status().message());
    } else {
      on_device = *std::move(loaded);
    }
  }
  int data_sets = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_directory() || entry.path().filename().string().rfind("test_data_set_", 0) != 0) {
      continue;
    }
    ++data_sets;
    // Inputs by name where the file names one, else in graph input order.
    std::map<std::string, Tensor> by_name;
    std::vector<Tensor> in_order;
    for (int i = 0;; ++i) {
      const fs::path f = entry.path() / absl::StrCat("input_", i, ".pb");
      if (!fs::exists(f)) break;
      std::ifstream in(f, std::ios::binary);
      onnx::TensorProto tp;
      if (!tp.ParseFromIstream(&in)) return absl::StrCat("cannot parse ", f.string());
      auto t = inferd::models::TensorFromOnnx(tp, entry.path());
      if (!t.ok()) return absl::StrCat("input ", i, ": ", t.status().message());
      if (!tp.name().empty()) by_name[tp.name()] = *t;
      in_order.push_back(*t);
    }
    std::vector<Tensor> inputs;
    const auto& declared = (*model)->inputs();
    for (size_t i = 0; i < declared.size(); ++i) {
      auto it = by_name.find(declared[i].name);
      if (it != by_name.end()) {
        inputs.push_back(it->second);
      } else if (i < in_order.size()) {
        inputs.push_back(in_order[i]);
      } else {
        return absl::StrCat("no data for input '", declared[i].name, "'");
      }
    }
    auto outputs = (*model)->Run(inputs);
    if (!outputs.ok()) return absl::StrCat("run: ", outputs.status().message());
    if (on_device) {
      auto device_outputs = on_device->Run(inputs);
      if (!device_outputs.ok()) {
        return absl::StrCat("device run: ", device_outputs.status().message());
      }
      for (size_t i = 0; i < outputs->size(); ++i) {
        const std::string diff = CompareToCpu((*device_outputs)[i], (*outputs)[i]);
        if (!diff.empty()) return absl::StrCat(entry.path().filename().string(), " ", diff);
      }
    }
    for (size_t i = 0; i < outputs->size(); ++i) {
      const fs::path f = entry.path() / absl::StrCat("output_", i, ".pb");
      auto want = inferd::models::ReadTensorFile(f);
      if (!want.ok()) return absl::StrCat("expected output ", i, ": ", want.status().message());
      const std::string diff = Compare((*outputs)[i], *want);
      if (!diff.empty()) {
        return absl::StrCat(entry.path().filename().string(), " output ", i, " '",
                            proto.graph().output(static_cast<int>(i)).name(), "': ", diff);
      }
    }
  }
  if (data_sets == 0) return "no test_data_set_* directory";
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> suites;
  std::optional<inferd::models::ExecutorOptions> device;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--device=", 0) == 0) {
      auto placement = inferd::models::ParsePlacement(arg.substr(9));
      if (!placement.ok()) {
        std::printf("%s\n", std::string(placement.status().message()).c_str());
        return 2;
      }
      if (!device) device.emplace();
      device->placement = *placement;
    } else if (arg.rfind("--precision=", 0) == 0) {
      auto precision = inferd::models::ParsePrecision(arg.substr(12));
      if (!precision.ok()) {
        std::printf("%s\n", std::string(precision.status().message()).c_str());
        return 2;
      }
      if (!device) device.emplace();
      device->precision = *precision;
    } else {
      suites.emplace_back(arg);
    }
  }
  if (device && device->placement.is_cpu()) device.reset();
  if (device) {
    // Is the device there at all? Load a one-node model on it.
    const fs::path probe = fs::path(kDataRoot) / "node" / "test_relu" / "model.onnx";
    inferd::models::LoadOptions options;
    options.executor = *device;
    auto loaded = inferd::models::Model::Load(probe, options);
    if (!loaded.ok() && loaded.status().code() == absl::StatusCode::kFailedPrecondition) {
      std::printf("SKIP every test: %s\n", std::string(loaded.status().message()).c_str());
      return 77;
    }
  }
  int device_skipped = 0;
  if (suites.empty()) {
    for (const char* s : {"node", "pytorch-converted", "pytorch-operator"}) {
      suites.push_back(fs::path(kDataRoot) / s);
    }
  }
  int passed = 0, failed = 0, skipped = 0;
  std::map<std::string, int> skip_reasons;
  for (const fs::path& suite : suites) {
    if (!fs::is_directory(suite)) {
      std::printf("FAIL %s: suite directory missing (install libonnx-testdata)\n", suite.c_str());
      ++failed;
      continue;
    }
    std::vector<fs::path> tests;
    for (const auto& e : fs::directory_iterator(suite)) {
      if (fs::exists(e.path() / "model.onnx")) tests.push_back(e.path());
    }
    std::sort(tests.begin(), tests.end());
    for (const fs::path& dir : tests) {
      const std::string name = suite.filename().string() + "/" + dir.filename().string();
      onnx::ModelProto proto;
      std::ifstream in(dir / "model.onnx", std::ios::binary);
      if (!proto.ParseFromIstream(&in)) {
        std::printf("FAIL %s: model.onnx does not parse\n", name.c_str());
        ++failed;
        continue;
      }
      const std::string reason = SkipReason(proto);
      if (!reason.empty()) {
        std::printf("SKIP %s: %s\n", name.c_str(), reason.c_str());
        ++skipped;
        // Group "op X (opset N) not supported" by op for the summary.
        ++skip_reasons[reason.rfind("op ", 0) == 0 ? "unsupported op" : reason];
        continue;
      }
      std::string device_skip;
      const std::string error = RunTest(dir, proto, device ? &*device : nullptr, &device_skip);
      if (error.empty() && !device_skip.empty()) {
        std::printf("PASS %s (cpu only; device: %s)\n", name.c_str(), device_skip.c_str());
        ++passed;
        ++device_skipped;
      } else if (error.empty()) {
        std::printf("PASS %s\n", name.c_str());
        ++passed;
      } else {
        std::printf("FAIL %s: %s\n", name.c_str(), error.c_str());
        ++failed;
      }
    }
  }
  std::printf("\nskip reasons:");
  for (const auto& [reason, n] : skip_reasons) std::printf(" %s %d;", reason.c_str(), n);
  std::printf("\n%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  if (device) {
    std::printf("on %s: %d of the passed tests also ran there and matched the cpu; %d could not "
                "be loaded there (listed above)\n",
                device->placement.ToString().c_str(), passed - device_skipped, device_skipped);
  }
  return failed == 0 ? 0 : 1;
}
