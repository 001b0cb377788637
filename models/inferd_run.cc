// inferd-run: runs an ONNX model through the inferd runtime, on test data or as a benchmark.
//
//   inferd-run --model M.onnx --input_dir D --output_dir O
//   inferd-run --model M.onnx --images A.jpg,B.png --output_dir O
//   inferd-run --model M.onnx --bench RUNS --batch B --threads T [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "models/model.h"
#include "models/onnx_import.h"
#include "serving/pipeline.h"

ABSL_FLAG(std::string, model, "", "Path of the ONNX model file (required).");
ABSL_FLAG(std::string, input_dir, "",
          "Directory with input_<i>.pb TensorProto files, in graph input order.");
ABSL_FLAG(std::string, output_dir, "",
          "Directory to write output_<i>.pb files to, in graph output order.");
ABSL_FLAG(std::string, images, "",
          "Comma-separated JPEG/PNG files for the model's image input, preprocessed as the "
          "inferd.json beside the model file declares (as inferd-server does); writes the "
          "preprocessed batch as input_0.pb and the raw outputs to --output_dir.");
ABSL_FLAG(int, bench, 0, "Benchmark: number of timed runs on random inputs.");
ABSL_FLAG(int, batch, 1, "Benchmark: batch size substituted for dynamic leading dimensions.");
ABSL_FLAG(int, warmup, 2, "Benchmark: untimed runs before the timed ones.");
ABSL_FLAG(int, threads, 0, "Intra-op threads (0: one per core).");
ABSL_FLAG(bool, profile, false, "Benchmark: print time per operator type (stderr).");
ABSL_FLAG(bool, json, false, "Benchmark: print one JSON line instead of text.");
ABSL_FLAG(std::string, device, "cpu",
          "Where the model runs: cpu, or cuda[:N] in builds with CUDA.");
ABSL_FLAG(std::string, precision, "fp32",
          "Device precision: fp32, tf32 (TF32 tensor cores for matrix products) or fp16 "
          "(weights converted at load).");
ABSL_FLAG(std::vector<std::string>, graph_batch_sizes, {},
          "Device only: batch sizes to capture CUDA graphs for at load (default: --batch when "
          "benchmarking, none otherwise).");

namespace fs = std::filesystem;
using inferd::models::DType;
using inferd::models::Model;
using inferd::models::Tensor;

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "inferd-run: %s\n", message.c_str());
  return 1;
}

int WriteOutputs(const Model& model, const std::vector<Tensor>& outputs, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Fail(absl::StrCat("cannot create '", dir.string(), "': ", ec.message()));
  for (size_t i = 0; i < outputs.size(); ++i) {
    const fs::path file = dir / absl::StrCat("output_", i, ".pb");
    auto s = inferd::models::WriteTensorFile(outputs[i], model.outputs()[i].name, file);
    if (!s.ok()) return Fail(std::string(s.message()));
    std::fprintf(stderr, "wrote %s %s\n", file.c_str(),
                 inferd::models::ShapeToString(outputs[i].shape()).c_str());
  }
  return 0;
}

int RunOnTestData(const Model& model, const fs::path& input_dir, const fs::path& output_dir) {
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < model.inputs().size(); ++i) {
    const fs::path file = input_dir / absl::StrCat("input_", i, ".pb");
    auto t = inferd::models::ReadTensorFile(file);
    if (!t.ok()) return Fail(std::string(t.status().message()));
    inputs.push_back(*std::move(t));
  }
  auto outputs = model.Run(inputs);
  if (!outputs.ok()) return Fail(std::string(outputs.status().message()));
  return WriteOutputs(model, *outputs, output_dir);
}

// Preprocesses `images` as the server would for a model whose only input is an image input.
int RunOnImages(const Model& model, const fs::path& model_dir, const std::string& images,
                const fs::path& output_dir) {
  const auto signature = inferd::serving::SignatureFromModel(model);
  auto pipeline = inferd::serving::ModelPipeline::Load(model_dir, signature);
  if (!pipeline.ok()) return Fail(std::string(pipeline.status().message()));
  if (*pipeline == nullptr || model.inputs().size() != 1 || !(*pipeline)->image_input(0)) {
    return Fail(absl::StrCat("--images needs a model with one input, declared an image input in ",
                             (model_dir / inferd::serving::kPipelineFile).string()));
  }
  std::vector<std::string> encoded;
  for (absl::string_view name : absl::StrSplit(images, ',', absl::SkipEmpty())) {
    std::ifstream in(std::string(name), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (!in) return Fail(absl::StrCat("cannot read image '", name, "'"));
    encoded.push_back(bytes.str());
  }
  auto input = (*pipeline)->Preprocess(0, encoded);
  if (!input.ok()) return Fail(std::string(input.status().message()));
  std::error_code ec;
  fs::create_directories(output_dir, ec);
  const fs::path input_file = output_dir / "input_0.pb";
  if (auto s = inferd::models::WriteTensorFile(*input, model.inputs()[0].name, input_file);
      !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::fprintf(stderr, "wrote %s %s (preprocessed)\n", input_file.c_str(),
               inferd::models::ShapeToString(input->shape()).c_str());
  auto outputs = model.Run({*input});
  if (!outputs.ok()) return Fail(std::string(outputs.status().message()));
  return WriteOutputs(model, *outputs, output_dir);
}

absl::StatusOr<std::vector<Tensor>> RandomInputs(const Model& model, int batch) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Tensor> inputs;
  for (const auto& info : model.inputs()) {
    inferd::models::Shape shape;
    for (size_t d = 0; d < info.dims.size(); ++d) {
      if (info.dims[d] >= 0) {
        shape.push_back(info.dims[d]);
      } else if (d == 0) {
        shape.push_back(batch);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", info.name, "' has a dynamic dimension ", d,
                         "; --bench can only choose the batch dimension"));
      }
    }
    auto t = Tensor::Create(info.dtype, shape);
    if (!t.ok()) return t.status();
    std::memset(t->raw_data(), 0, t->byte_size());
    if (info.dtype == DType::kFloat32) {
      for (int64_t i = 0; i < t->num_elements(); ++i) t->data<float>()[i] = normal(rng);
    }
    inputs.push_back(*std::move(t));
  }
  return inputs;
}

// Linear interpolation between order statistics (numpy's default percentile).
double Percentile(std::vector<double> sorted, double q) {
  const double pos = q * (sorted.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

int Bench(const Model& model, const std::string& model_path, int runs, int batch, int warmup,
          bool json) {
  auto inputs = RandomInputs(model, batch);
  if (!inputs.ok()) return Fail(std::string(inputs.status().message()));
  for (int i = 0; i < warmup; ++i) {
    auto out = model.Run(*inputs);
    if (!out.ok()) return Fail(std::string(out.status().message()));
  }
  std::vector<double> ms;
  std::map<std::string, std::pair<double, int>> per_op;     // total us, nodes
  std::vector<inferd::models::RunProfile::Entry> per_node;  // summed over runs
  for (int i = 0; i < runs; ++i) {
    inferd::models::RunProfile profile;
    const auto start = std::chrono::steady_clock::now();
    inferd::models::RunOptions run_options;
    if (absl::GetFlag(FLAGS_profile)) run_options.profile = &profile;
    auto out = model.Run(*inputs, run_options);
    for (size_t n = 0; n < profile.entries.size(); ++n) {
      const auto& e = profile.entries[n];
      per_op[e.op_type].first += e.microseconds / runs;
      if (i == 0) {
        ++per_op[e.op_type].second;
        per_node.push_back(e);
        per_node.back().microseconds = 0;
      }
      per_node[n].microseconds += e.microseconds / runs;
    }
    const auto end = std::chrono::steady_clock::now();
    if (!out.ok()) return Fail(std::string(out.status().message()));
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::sort(ms.begin(), ms.end());
  if (!per_op.empty()) {
    std::vector<std::pair<double, std::string>> rows;
    double total = 0;
    for (const auto& [op, v] : per_op) {
      rows.push_back({v.first, op});
      total += v.first;
    }
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "%-40s %-18s %10s %8s\n", "node", "output", "ms/run", "GFLOP/s");
    for (const auto& e : per_node) {
      std::fprintf(stderr, "%-40s %-18s %10.3f %8.1f\n", (e.op_type + " " + e.node_name).c_str(),
                   inferd::models::ShapeToString(e.output_shape).c_str(), e.microseconds / 1000,
                   e.flops / (e.microseconds * 1e3));
    }
    std::fprintf(stderr, "%-22s %6s %10s %6s\n", "op", "nodes", "ms/run", "share");
    for (const auto& [us, op] : rows) {
      std::fprintf(stderr, "%-22s %6d %10.3f %5.1f%%\n", op.c_str(), per_op[op].second, us / 1000,
                   100 * us / total);
    }
  }
  const double median = Percentile(ms, 0.5), p90 = Percentile(ms, 0.9);
  const double items = batch * 1000.0 / median;
  const int threads = model.device().num_threads();
  if (json) {
    std::printf(
        "{\"engine\":\"inferd\",\"model\":\"%s\",\"device\":\"%s\",\"precision\":\"%s\","
        "\"batch\":%d,\"threads\":%d,\"runs\":%d,"
        "\"min_ms\":%.4f,\"median_ms\":%.4f,\"p90_ms\":%.4f,\"items_per_s\":%.3f}\n",
        model_path.c_str(), absl::GetFlag(FLAGS_device).c_str(),
        absl::GetFlag(FLAGS_precision).c_str(), batch, threads, runs, ms.front(), median, p90,
        items);
  } else {
    std::printf("model %s  batch %d  threads %d  runs %d\n", model_path.c_str(), batch, threads,
                runs);
    std::printf("latency ms: min %.3f  median %.3f  p90 %.3f\n", ms.front(), median, p90);
    std::printf("throughput: %.2f items/s\n", items);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "runs an ONNX model through the inferd runtime.\n"
      "  inferd-run --model M.onnx --input_dir D --output_dir O\n"
      "  inferd-run --model M.onnx --images A.jpg,B.png --output_dir O\n"
      "  inferd-run --model M.onnx --bench RUNS --batch B --threads T [--json]");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1)
    return Fail(absl::StrCat("unexpected argument '", rest[1], "' (see --help)"));
  const std::string model_path = absl::GetFlag(FLAGS_model);
  const std::string input_dir = absl::GetFlag(FLAGS_input_dir);
  const std::string output_dir = absl::GetFlag(FLAGS_output_dir);
  const int bench = absl::GetFlag(FLAGS_bench);
  const int batch = absl::GetFlag(FLAGS_batch);
  if (model_path.empty()) return Fail("--model is required (see --help)");
  if (bench < 0 || batch < 1 || absl::GetFlag(FLAGS_warmup) < 0 ||
      absl::GetFlag(FLAGS_threads) < 0) {
    return Fail("--bench, --warmup and --threads must be >= 0 and --batch >= 1");
  }
  const std::string images = absl::GetFlag(FLAGS_images);
  const bool test_data = !input_dir.empty() || !output_dir.empty();
  if (test_data == (bench > 0)) {
    return Fail(
        "give either --input_dir (or --images) and --output_dir, or --bench RUNS (see --help)");
  }
  if (test_data && ((input_dir.empty() == images.empty()) || output_dir.empty())) {
    return Fail("--output_dir goes with exactly one of --input_dir and --images");
  }
  if (!fs::is_regular_file(model_path)) {
    return Fail(absl::StrCat("model file '", model_path, "' does not exist"));
  }
  inferd::models::LoadOptions options;
  options.device = std::make_shared<inferd::models::CpuDevice>(absl::GetFlag(FLAGS_threads));
  auto placement = inferd::models::ParsePlacement(absl::GetFlag(FLAGS_device));
  if (!placement.ok()) return Fail(std::string(placement.status().message()));
  auto precision = inferd::models::ParsePrecision(absl::GetFlag(FLAGS_precision));
  if (!precision.ok()) return Fail(std::string(precision.status().message()));
  options.executor.placement = *placement;
  options.executor.precision = *precision;
  for (const std::string& b : absl::GetFlag(FLAGS_graph_batch_sizes)) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(b, &n) || n < 1) {
      return Fail(absl::StrCat("bad --graph_batch_sizes entry '", b, "'"));
    }
    options.executor.graph_batch_sizes.push_back(n);
  }
  if (options.executor.graph_batch_sizes.empty() && bench > 0) {
    options.executor.graph_batch_sizes.push_back(batch);
  }
  const auto load_start = std::chrono::steady_clock::now();
  auto model = Model::Load(model_path, options);
  if (!model.ok()) return Fail(absl::StrCat("cannot load model: ", model.status().message()));
  const auto& stats = (*model)->plan_stats();
  std::fprintf(
      stderr,
      "loaded %s in %.1f ms on %s: %d nodes in file, %d planned (%d folded; %d batch norms, "
      "%d activations, %d residual adds and %d pads fused)\n",
      model_path.c_str(),
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start)
          .count(),
      (*model)->PlacementDescription().c_str(), stats.nodes_in_file, stats.nodes_planned, stats.folded_constants, stats.fused_batch_norms,
      stats.fused_activations, stats.fused_residual_adds, stats.folded_pads);
  if (!images.empty()) {
    return RunOnImages(**model, fs::path(model_path).parent_path(), images, output_dir);
  }
  if (test_data) return RunOnTestData(**model, input_dir, output_dir);
  return Bench(**model, model_path, bench, batch, absl::GetFlag(FLAGS_warmup),
               absl::GetFlag(FLAGS_json));
}
