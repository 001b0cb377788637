// Load-time graph planning: ordering, validation against a kernel registry, and rewrites that
// make the per-request plan cheaper. Every function leaves the graph's meaning unchanged.
#ifndef INFERD_MODELS_PLANNER_H_
#define INFERD_MODELS_PLANNER_H_

#include "absl/status/status.h"
#include "models/graph.h"
#include "models/kernel.h"
#include "models/model.h"

namespace inferd::models {

// Reorders graph.nodes topologically. Fails on a cycle, naming a node in it.
absl::Status SortTopologically(Graph& graph);

// Fails, naming the node, op and opset, if any node has no kernel in `registry`.
absl::Status CheckKernelsExist(const Graph& graph, const KernelRegistry& registry);

// Evaluates nodes whose inputs are all constants (Constant nodes, weight transforms, shape
// arithmetic on constants) and replaces them by their values.
absl::Status FoldConstants(Graph& graph, const KernelRegistry& registry, ThreadPool& pool,
                           PlanStats& stats);

// Folds an inference-mode BatchNormalization into the Conv that feeds it (constant weights,
// the Conv output used only by the BatchNormalization).
void FoldBatchNormIntoConv(Graph& graph, PlanStats& stats);

// Fuses Relu and Clip (constant bounds) into the preceding Conv, Gemm or Add, recorded as the
// node attribute kFusedActivation (and kFusedClipMin/Max).
void FuseActivations(Graph& graph, PlanStats& stats);

// Folds an Add that alone reads a Conv's output into that Conv (a residual connection): the
// Add's other operand becomes the Conv's fourth input, added (and the Add's fused activation
// applied) as the Conv stores its result. Runs after FuseActivations.
void FuseResidualAdd(Graph& graph, PlanStats& stats);

// Folds a zero-valued constant Pad of the spatial dimensions into the Conv or AveragePool
// that alone reads it (the pool then counts the padding, as the padded tensor did).
void FoldPadIntoWindow(Graph& graph, PlanStats& stats);

// Drops nodes none of whose outputs are needed for the graph outputs.
void RemoveDeadNodes(Graph& graph);

// For each node, in order, the values an executor can free once that node has run: the inputs
// it is the last to read and the outputs nothing reads. Graph inputs, outputs and constants are
// never listed. Shared by the CPU steps and device executors.
std::vector<std::vector<int>> ReleaseSchedule(const Graph& graph);

// One node's input pointers, for the CPU steps and device executors alike (T: their tensor
// type): the load-time constant where there is one, null for an omitted input, else the value
// an earlier node computed.
template <typename T>
void GatherStepInputs(const Node& node, const std::vector<const T*>& constant_inputs,
                      std::vector<T>& values, std::vector<const T*>* in_ptrs) {
  in_ptrs->clear();
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const int in = node.inputs[i];
    in_ptrs->push_back(constant_inputs[i] ? constant_inputs[i]
                       : in == kNoValue   ? nullptr
                                          : &values[in]);
  }
}

// Moves one node's outputs into the value table (omitted outputs are dropped).
template <typename T>
void StoreStepOutputs(const Node& node, std::vector<T>& outs, std::vector<T>& values) {
  for (size_t o = 0; o < node.outputs.size(); ++o) {
    if (node.outputs[o] != kNoValue) values[node.outputs[o]] = std::move(outs[o]);
  }
}

inline constexpr char kFusedActivation[] = "inferd.activation";
inline constexpr char kFusedClipMin[] = "inferd.clip_min";
inline constexpr char kFusedClipMax[] = "inferd.clip_max";

}  // namespace inferd::models

#endif  // INFERD_MODELS_PLANNER_H_
