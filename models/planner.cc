#include "models/planner.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace inferd::models {
namespace {

// The index of the single node reading `value`, or -1.
int SoleConsumer(const Graph& graph, int value) {
  int found = -1;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (int in : graph.nodes[i].inputs) {
      if (in == value) {
        if (found >= 0 && found != static_cast<int>(i)) return -1;
        found = static_cast<int>(i);
      }
    }
  }
  for (int out : graph.outputs) {
    if (out == value) return -1;
  }
  return found;
}

// Drops the nodes marked in `removed`, keeping the others' order.
void EraseNodes(Graph& graph, const std::vector<bool>& removed) {
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(graph.nodes[i]));
  }
  graph.nodes = std::move(kept);
}

bool IsDefaultDomain(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

const Tensor* ConstantOf(const Graph& graph, int value) {
  if (value == kNoValue) return nullptr;
  auto it = graph.constants.find(value);
  return it == graph.constants.end() ? nullptr : &it->second;
}

class PlainAllocator : public TensorAllocator {
 public:
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) override {
    return Tensor::Create(dtype, std::move(shape));
  }
};

}  // namespace

absl::Status SortTopologically(Graph& graph) {
  const size_t n = graph.nodes.size();
  std::vector<int> producer(graph.values.size(), -1);
  for (size_t i = 0; i < n; ++i) {
    for (int out : graph.nodes[i].outputs) {
      if (out != kNoValue) producer[out] = static_cast<int>(i);
    }
  }
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> consumers(n);
  for (size_t i = 0; i < n; ++i) {
    for (int in : graph.nodes[i].inputs) {
      if (in == kNoValue || producer[in] < 0) continue;
      ++pending[i];
      consumers[producer[in]].push_back(static_cast<int>(i));
    }
  }
  std::deque<int> ready;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.push_back(static_cast<int>(i));
  }
  std::vector<int> order;
  while (!ready.empty()) {
    const int i = ready.front();
    ready.pop_front();
    order.push_back(i);
    for (int c : consumers[i]) {
      if (--pending[c] == 0) ready.push_back(c);
    }
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i) {
      if (pending[i] > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("the graph has a cycle through ", graph.nodes[i].Describe()));
      }
    }
  }
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (int i : order) sorted.push_back(std::move(graph.nodes[i]));
  graph.nodes = std::move(sorted);
  return absl::OkStatus();
}

absl::Status CheckKernelsExist(const Graph& graph, const KernelRegistry& registry) {
  for (const Node& n : graph.nodes) {
    if (registry.Find(n.domain, n.op_type, n.opset) != nullptr) continue;
    if (IsDefaultDomain(n) && n.opset < kMinOpset) {
      return absl::UnimplementedError(absl::StrCat(n.Describe(), ": opset ", n.opset,
                                                   " is older than the oldest supported opset (",
                                                   kMinOpset, ")"));
    }
    if (IsDefaultDomain(n) && n.opset > kMaxOpset) {
      return absl::UnimplementedError(absl::StrCat(n.Describe(), ": opset ", n.opset,
                                                   " is newer than the newest supported opset (",
                                                   kMaxOpset, ")"));
    }
    return absl::UnimplementedError(absl::StrCat(n.Describe(), ": operator ",
                                                 n.domain.empty() ? "" : n.domain + ".", n.op_type,
                                                 " is not supported at opset ", n.opset));
  }
  return absl::OkStatus();
}

absl::Status FoldConstants(Graph& graph, const KernelRegistry& registry, ThreadPool& pool,
                           PlanStats& stats) {
  PlainAllocator allocator;
  std::vector<Node> kept;
  for (Node& n : graph.nodes) {
    bool all_constant = true;
    std::vector<const Tensor*> inputs;
    for (int in : n.inputs) {
      const Tensor* c = ConstantOf(graph, in);
      if (in != kNoValue && c == nullptr) all_constant = false;
      inputs.push_back(c);
    }
    KernelFactory factory = registry.Find(n.domain, n.op_type, n.opset);
    if (!all_constant || factory == nullptr) {
      kept.push_back(std::move(n));
      continue;
    }
    KernelInfo info{n, inputs, {}};
    auto kernel = factory(info);
    if (!kernel.ok()) {
      return absl::Status(kernel.status().code(),
                          absl::StrCat(n.Describe(), ": ", kernel.status().message()));
    }
    std::vector<Tensor> outputs(n.outputs.size());
    KernelContext ctx(inputs, &outputs, &allocator, &pool);
    absl::Status s = (*kernel)->Compute(ctx);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat(n.Describe(), ": ", s.message()));
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (n.outputs[i] != kNoValue) graph.constants[n.outputs[i]] = std::move(outputs[i]);
    }
    ++stats.folded_constants;
  }
  graph.nodes = std::move(kept);
  return absl::OkStatus();
}

void FoldBatchNormIntoConv(Graph& graph, PlanStats& stats) {
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& conv = graph.nodes[i];
    if (conv.op_type != "Conv" || !IsDefaultDomain(conv) || conv.outputs.size() != 1) continue;
    const int bn_index = SoleConsumer(graph, conv.outputs[0]);
    if (bn_index < 0) continue;
    Node& bn = graph.nodes[bn_index];
    if (bn.op_type != "BatchNormalization" || bn.inputs.size() != 5 ||
        bn.inputs[0] != conv.outputs[0]) {
      continue;
    }
    if (bn.attrs.GetInt("training_mode", 0).value_or(1) != 0) continue;
    if (bn.outputs.size() > 1 && bn.outputs[1] != kNoValue) continue;
    const Tensor* w = ConstantOf(graph, conv.inputs.size() > 1 ? conv.inputs[1] : kNoValue);
    const Tensor* b = ConstantOf(graph, conv.inputs.size() > 2 ? conv.inputs[2] : kNoValue);
    const Tensor* scale = ConstantOf(graph, bn.inputs[1]);
    const Tensor* shift = ConstantOf(graph, bn.inputs[2]);
    const Tensor* mean = ConstantOf(graph, bn.inputs[3]);
    const Tensor* var = ConstantOf(graph, bn.inputs[4]);
    if (!w || !scale || !shift || !mean || !var || w->dtype() != DType::kFloat32 || w->rank() < 3) {
      continue;
    }
    const int64_t cout = w->dim(0);
    bool ok = (b == nullptr || (b->dtype() == DType::kFloat32 && b->num_elements() == cout));
    for (const Tensor* t : {scale, shift, mean, var}) {
      ok = ok && t->dtype() == DType::kFloat32 && t->num_elements() == cout;
    }
    if (!ok) continue;
    const float eps = bn.attrs.GetFloat("epsilon", 1e-5f).value_or(1e-5f);
    auto new_w = w->Clone();
    auto new_b = Tensor::Create(DType::kFloat32, {cout});
    if (!new_w.ok() || !new_b.ok()) continue;
    const int64_t per_out = w->num_elements() / cout;
    for (int64_t c = 0; c < cout; ++c) {
      const float s = scale->data<float>()[c] / std::sqrt(var->data<float>()[c] + eps);
      float* row = new_w->data<float>() + c * per_out;
      for (int64_t k = 0; k < per_out; ++k) row[k] *= s;
      const float bias = b ? b->data<float>()[c] : 0.0f;
      new_b->data<float>()[c] = (bias - mean->data<float>()[c]) * s + shift->data<float>()[c];
    }
    const int w_id = graph.AddValue(conv.name + "/bn_folded_weight");
    const int b_id = graph.AddValue(conv.name + "/bn_folded_bias");
    graph.constants[w_id] = *std::move(new_w);
    graph.constants[b_id] = *std::move(new_b);
    Node& conv_again = graph.nodes[i];  // AddValue does not touch nodes; reference still valid
    conv_again.inputs.resize(3);
    conv_again.inputs[1] = w_id;
    conv_again.inputs[2] = b_id;
    conv_again.outputs[0] = graph.nodes[bn_index].outputs[0];
    removed[bn_index] = true;
    ++stats.fused_batch_norms;
  }
  EraseNodes(graph, removed);
}

void FuseActivations(Graph& graph, PlanStats& stats) {
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& producer = graph.nodes[i];
    if (!IsDefaultDomain(producer) || producer.outputs.size() != 1 ||
        producer.attrs.Has(kFusedActivation)) {
      continue;
    }
    if (producer.op_type != "Conv" && producer.op_type != "Add") continue;
    const int act_index = SoleConsumer(graph, producer.outputs[0]);
    if (act_index < 0 || removed[act_index]) continue;
    const Node& act = graph.nodes[act_index];
    if (!IsDefaultDomain(act) || act.inputs.empty() || act.inputs[0] != producer.outputs[0]) {
      continue;
    }
    float lo = -std::numeric_limits<float>::infinity();
    float hi = std::numeric_limits<float>::infinity();
    if (act.op_type == "Relu") {
      lo = 0.0f;
    } else if (act.op_type == "Clip") {
      if (act.opset < 11) {
        lo = act.attrs.GetFloat("min", lo).value_or(lo);
        hi = act.attrs.GetFloat("max", hi).value_or(hi);
      } else {
        bool bounds_constant = true;
        for (size_t k = 1; k < act.inputs.size() && k <= 2; ++k) {
          if (act.inputs[k] == kNoValue) continue;
          const Tensor* c = ConstantOf(graph, act.inputs[k]);
          if (c == nullptr || c->num_elements() != 1 || c->dtype() != DType::kFloat32) {
            bounds_constant = false;
            break;
          }
          (k == 1 ? lo : hi) = c->data<float>()[0];
        }
        if (!bounds_constant) continue;
      }
    } else {
      continue;
    }
    Attribute kind;
    kind.type = Attribute::Type::kString;
    kind.s = "Clip";
    producer.attrs.Set(kFusedActivation, kind);
    Attribute min_attr;
    min_attr.type = Attribute::Type::kFloat;
    min_attr.f = lo;
    producer.attrs.Set(kFusedClipMin, min_attr);
    Attribute max_attr = min_attr;
    max_attr.f = hi;
    producer.attrs.Set(kFusedClipMax, max_attr);
    producer.outputs[0] = act.outputs[0];
    removed[act_index] = true;
    ++stats.fused_activations;
  }
  EraseNodes(graph, removed);
}

void FuseResidualAdd(Graph& graph, PlanStats& stats) {
  // Position of each value's producer in the (topologically sorted) node list; -1 for inputs
  // and constants. A Conv can take over an Add only if the Add's other operand exists by then.
  std::vector<int> producer(graph.values.size(), -1);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (int out : graph.nodes[i].outputs) {
      if (out != kNoValue) producer[out] = static_cast<int>(i);
    }
  }
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& conv = graph.nodes[i];
    if (conv.op_type != "Conv" || !IsDefaultDomain(conv) || conv.outputs.size() != 1 ||
        conv.inputs.size() < 2 || conv.inputs.size() > 3 || conv.attrs.Has(kFusedActivation)) {
      continue;
    }
    const int add_index = SoleConsumer(graph, conv.outputs[0]);
    if (add_index < 0 || removed[add_index]) continue;
    const Node& add = graph.nodes[add_index];
    if (add.op_type != "Add" || !IsDefaultDomain(add) || add.inputs.size() != 2 ||
        add.outputs.size() != 1) {
      continue;
    }
    const int other = add.inputs[0] == conv.outputs[0] ? add.inputs[1] : add.inputs[0];
    if (other == conv.outputs[0] || other == kNoValue || producer[other] >= static_cast<int>(i)) {
      continue;
    }
    conv.inputs.resize(3, kNoValue);
    conv.inputs.push_back(other);
    for (const char* name : {kFusedActivation, kFusedClipMin, kFusedClipMax}) {
      if (const Attribute* a = add.attrs.Find(name)) conv.attrs.Set(name, *a);
    }
    conv.outputs[0] = add.outputs[0];
    removed[add_index] = true;
    ++stats.fused_residual_adds;
  }
  EraseNodes(graph, removed);
}

void FoldPadIntoWindow(Graph& graph, PlanStats& stats) {
  std::vector<bool> removed(graph.nodes.size(), false);
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& pad = graph.nodes[i];
    if (pad.op_type != "Pad" || !IsDefaultDomain(pad) || pad.outputs.size() != 1 ||
        pad.inputs.empty()) {
      continue;
    }
    if (pad.attrs.GetString("mode", "constant").value_or("") != "constant") continue;
    std::vector<int64_t> pads;
    if (pad.opset < 11) {
      pads = pad.attrs.GetInts("pads", {}).value_or(std::vector<int64_t>{});
      if (pad.attrs.GetFloat("value", 0.0f).value_or(1.0f) != 0.0f) continue;
    } else {
      const Tensor* p = ConstantOf(graph, pad.inputs.size() > 1 ? pad.inputs[1] : kNoValue);
      if (p == nullptr || (p->dtype() != DType::kInt64 && p->dtype() != DType::kInt32)) continue;
      for (int64_t k = 0; k < p->num_elements(); ++k) pads.push_back(p->ElementAsInt64(k));
      if (pad.inputs.size() > 2 && pad.inputs[2] != kNoValue) {
        const Tensor* v = ConstantOf(graph, pad.inputs[2]);
        if (v == nullptr || v->num_elements() != 1 || v->ElementAsDouble(0) != 0.0) continue;
      }
      if (pad.inputs.size() > 3 && pad.inputs[3] != kNoValue) continue;  // axes (opset 18)
    }
    const int rank = static_cast<int>(pads.size()) / 2;
    if (rank < 3 || static_cast<int>(pads.size()) != 2 * rank) continue;
    bool ok = pads[0] == 0 && pads[1] == 0 && pads[rank] == 0 && pads[rank + 1] == 0;
    for (int64_t v : pads) ok = ok && v >= 0;
    if (!ok) continue;
    const int consumer = SoleConsumer(graph, pad.outputs[0]);
    if (consumer < 0 || removed[consumer]) continue;
    Node& window = graph.nodes[consumer];
    const bool is_pool = window.op_type == "AveragePool";
    if ((!is_pool && window.op_type != "Conv") || !IsDefaultDomain(window) ||
        window.inputs.empty() || window.inputs[0] != pad.outputs[0]) {
      continue;
    }
    if (window.attrs.GetString("auto_pad", "NOTSET").value_or("") != "NOTSET") continue;
    std::vector<int64_t> own = window.attrs.GetInts("pads", {}).value_or(std::vector<int64_t>{-1});
    const int spatial = rank - 2;
    if (own.empty()) own.assign(2 * spatial, 0);
    if (static_cast<int>(own.size()) != 2 * spatial) continue;
    bool own_zero = true;
    for (int64_t v : own) own_zero = own_zero && v == 0;
    if (is_pool) {
      // The pool's own padding is excluded from averages unless count_include_pad; the
      // Pad's zeros are always counted. Merge only when both agree.
      const bool include = window.attrs.GetInt("count_include_pad", 0).value_or(0) != 0;
      if (!own_zero && !include) continue;
    }
    Attribute merged;
    merged.type = Attribute::Type::kInts;
    for (int side = 0; side < 2; ++side) {
      for (int d = 0; d < spatial; ++d) {
        merged.ints.push_back(own[side * spatial + d] + pads[side * rank + 2 + d]);
      }
    }
    window.attrs.Set("pads", merged);
    if (is_pool) {
      Attribute include;
      include.type = Attribute::Type::kInt;
      include.i = 1;
      window.attrs.Set("count_include_pad", include);
    }
    window.inputs[0] = pad.inputs[0];
    removed[i] = true;
    ++stats.folded_pads;
  }
  EraseNodes(graph, removed);
}

void RemoveDeadNodes(Graph& graph) {
  std::vector<bool> needed(graph.values.size(), false);
  for (int out : graph.outputs) needed[out] = true;
  std::vector<bool> keep(graph.nodes.size(), false);
  for (size_t k = graph.nodes.size(); k-- > 0;) {
    const Node& n = graph.nodes[k];
    for (int out : n.outputs) {
      if (out != kNoValue && needed[out]) keep[k] = true;
    }
    if (!keep[k]) continue;
    for (int in : n.inputs) {
      if (in != kNoValue) needed[in] = true;
    }
  }
  std::vector<Node> kept;
  for (size_t k = 0; k < graph.nodes.size(); ++k) {
    if (keep[k]) kept.push_back(std::move(graph.nodes[k]));
  }
  graph.nodes = std::move(kept);
  for (auto it = graph.constants.begin(); it != graph.constants.end();) {
    it = needed[it->first] ? std::next(it) : graph.constants.erase(it);
  }
}

std::vector<std::vector<int>> ReleaseSchedule(const Graph& g) {
  // Last step reading each value; values never read by a later step are released at once.
  std::vector<int> last_use(g.values.size(), -1);
  for (size_t s = 0; s < g.nodes.size(); ++s) {
    for (int in : g.nodes[s].inputs) {
      if (in != kNoValue) last_use[in] = static_cast<int>(s);
    }
  }
  std::vector<bool> pinned(g.values.size(), false);  // graph inputs, outputs and constants
  for (int id : g.inputs) pinned[id] = true;
  for (int id : g.outputs) pinned[id] = true;
  for (const auto& [id, t] : g.constants) pinned[id] = true;
  std::vector<std::vector<int>> schedule(g.nodes.size());
  for (size_t s = 0; s < g.nodes.size(); ++s) {
    std::vector<int>& release = schedule[s];
    for (int out : g.nodes[s].outputs) {
      if (out != kNoValue && !pinned[out] && last_use[out] < static_cast<int>(s)) {
        release.push_back(out);  // produced but never read
      }
    }
    for (int in : g.nodes[s].inputs) {
      if (in != kNoValue && !pinned[in] && last_use[in] == static_cast<int>(s) &&
          std::find(release.begin(), release.end(), in) == release.end()) {
        release.push_back(in);
      }
    }
  }
  return schedule;
}

}  // namespace inferd::models
