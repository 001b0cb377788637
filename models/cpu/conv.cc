// Conv (1-3 spatial dims, groups, dilations, strides, asymmetric and automatic pads) for
// float32, choosing per call among: Winograd for 3x3 stride-1 layers (winograd.cc, and
// winograd_small.cc for outputs of fewer than 32 2x2 tiles with few channels); a direct kernel
// for small stride-1 maps (direct_conv.cc); a direct depthwise kernel (depthwise.cc); and the
// packed GEMM with the input
// (pointwise) or its im2col packed in cache-sized column blocks, or, for small outputs, with
// positions and channels swapped as GEMM rows and columns. Bias, a residual and a fused
// Relu/Clip are applied as results are stored.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "models/cpu/depthwise.h"
#include "models/cpu/direct_conv.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernel_util.h"
#include "models/cpu/kernels.h"
#include "models/cpu/sgemm.h"
#include "models/cpu/window.h"
#include "models/cpu/winograd.h"
#include "models/cpu/winograd_small.h"
#include "models/planner.h"

namespace inferd::models::cpu {
namespace {

// Output columns per task: a multiple of the GEMM panel width.
constexpr int64_t kColumnBlock = 256;

// Largest zero-bordered plane (floats) im2col builds per channel for stride-1 layers: 16 KiB,
// within L1.
constexpr int64_t kSmallPlaneFloats = 4096;

// The transposed orientation costs an extra pass (its transposing store); it is chosen only
// when it pads the GEMM this much less (in practice: 7x7 outputs, where 49 positions pad to 56
// rows instead of 64 columns).
constexpr double kTransposedAdvantage = 1.13;

// dst[0, n) = src[0, n) / = 0. Im2col moves runs of one output row's width; on small feature
// maps (8 or 14 positions) a libc call per run costs more than the copy itself, so runs of up to
// 32 floats are two fixed-size (inlined) moves that overlap in the middle.
inline void CopyRun(float* dst, const float* src, int64_t n) {
  if (n > 32) {
    std::memcpy(dst, src, n * sizeof(float));
  } else if (n >= 16) {
    std::memcpy(dst, src, 64);
    std::memcpy(dst + n - 16, src + n - 16, 64);
  } else if (n >= 8) {
    std::memcpy(dst, src, 32);
    std::memcpy(dst + n - 8, src + n - 8, 32);
  } else if (n >= 4) {
    std::memcpy(dst, src, 16);
    std::memcpy(dst + n - 4, src + n - 4, 16);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

inline void ZeroRun(float* dst, int64_t n) {
  if (n > 32) {
    std::memset(dst, 0, n * sizeof(float));
  } else if (n >= 16) {
    std::memset(dst, 0, 64);
    std::memset(dst + n - 16, 0, 64);
  } else if (n >= 8) {
    std::memset(dst, 0, 32);
    std::memset(dst + n - 8, 0, 32);
  } else if (n >= 4) {
    std::memset(dst, 0, 16);
    std::memset(dst + n - 4, 0, 16);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = 0.0f;
  }
}

// Im2col columns as runs that stay within one output row and one GEMM panel.
struct ColumnRun {
  int64_t packed_offset;  // of the run's first column in row 0 of the packed layout
  int64_t od, oh, ow, length;
};

// The general im2col: any strides, dilations, pads and up to 3 spatial dims; runs that fall in
// the padding are zeroed.
void Im2ColRuns(const float* x, const WindowGeometry& g, int64_t channels,
                absl::Span<const ColumnRun> runs, int64_t width_panel, float* packed) {
  const int64_t sw = g.stride[2];
  for (int64_t c = 0; c < channels; ++c) {
    const float* xc = x + c * g.in_size();
    for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
      for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          const int64_t r = ((c * g.kernel[0] + kd) * g.kernel[1] + kh) * g.kernel[2] + kw;
          float* row = packed + r * width_panel;
          for (const ColumnRun& run : runs) {
            float* dst = row + run.packed_offset;
            const int64_t seg = run.length;
            const int64_t id = run.od * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
            const int64_t ih = run.oh * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
            if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
              ZeroRun(dst, seg);
              continue;
            }
            const float* src = xc + (id * g.in[1] + ih) * g.in[2];
            const int64_t iw0 = run.ow * sw - g.pad_begin[2] + kw * g.dilation[2];
            if (sw == 1) {
              // Valid j: 0 <= iw0 + j < in_w.
              const int64_t lo = std::clamp<int64_t>(-iw0, 0, seg);
              const int64_t hi = std::clamp<int64_t>(g.in[2] - iw0, lo, seg);
              ZeroRun(dst, lo);
              CopyRun(dst + lo, src + iw0 + lo, hi - lo);
              ZeroRun(dst + hi, seg - hi);
            } else {
              // Valid j: 0 <= iw0 + j * sw < in_w.
              const int64_t lo = std::clamp<int64_t>((-iw0 + sw - 1) / sw, 0, seg);
              const int64_t hi = std::clamp<int64_t>((g.in[2] - iw0 + sw - 1) / sw, lo, seg);
              std::fill(dst, dst + lo, 0.0f);
              const float* s0 = src + iw0;
              for (int64_t j = lo; j < hi; ++j) dst[j] = s0[j * sw];
              std::fill(dst + hi, dst + seg, 0.0f);
            }
          }
        }
      }
    }
  }
}

// Writes rows [c, kd, kh, kw] x columns [p0, p1) of the im2col matrix of one image/group
// straight into a packed GEMM layout: panels of `width_panel` columns, [K][width_panel] each,
// the last one zero-padded — PackB's layout for width 32, and for width 8 PackedA's layout of
// the transposed matrix (positions as rows).
void Im2ColPacked(const float* x, const WindowGeometry& g, int64_t channels, int64_t p0, int64_t p1,
                  int64_t width_panel, float* packed) {
  const int64_t width = p1 - p0;
  const int64_t rows = channels * g.kernel_size();
  const int64_t panel_floats = rows * width_panel;
  // The same runs for every (c, kd, kh, kw) row.
  absl::InlinedVector<ColumnRun, 32> runs;
  {
    const int64_t o_hw = g.out[1] * g.out[2];
    int64_t od = p0 / o_hw, oh = (p0 / g.out[2]) % g.out[1], ow = p0 % g.out[2];
    for (int64_t j = 0; j < width;) {
      const int64_t len = std::min({width - j, g.out[2] - ow, width_panel - j % width_panel});
      runs.push_back(
          ColumnRun{(j / width_panel) * panel_floats + j % width_panel, od, oh, ow, len});
      j += len;
      ow += len;
      if (ow == g.out[2]) {
        ow = 0;
        if (++oh == g.out[1]) {
          oh = 0;
          ++od;
        }
      }
    }
  }
  // Stride 1 over small 2-D planes: each channel is first copied into a zero-bordered plane
  // that stays in L1, so every run is one unconditional copy, without bounds or padding.
  const int64_t plane_h = std::max(g.in[1], g.out[1] + (g.kernel[1] - 1) * g.dilation[1] -
                                                g.pad_begin[1]) + g.pad_begin[1];
  const int64_t plane_w = std::max(g.in[2], g.out[2] + (g.kernel[2] - 1) * g.dilation[2] -
                                                g.pad_begin[2]) + g.pad_begin[2];
  if (g.in[0] == 1 && g.kernel[0] == 1 && g.stride[1] == 1 && g.stride[2] == 1 &&
      plane_h * plane_w <= kSmallPlaneFloats) {
    float* plane = ThreadScratch(1, plane_h * plane_w);
    for (int64_t c = 0; c < channels; ++c) {
      const float* xc = x + c * g.in_size();
      ZeroRun(plane, plane_h * plane_w);
      for (int64_t ih = 0; ih < g.in[1]; ++ih) {
        CopyRun(plane + (ih + g.pad_begin[1]) * plane_w + g.pad_begin[2], xc + ih * g.in[2],
                g.in[2]);
      }
      for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          float* row = packed + ((c * g.kernel[1] + kh) * g.kernel[2] + kw) * width_panel;
          const float* src = plane + kh * g.dilation[1] * plane_w + kw * g.dilation[2];
          for (const ColumnRun& run : runs) {
            CopyRun(row + run.packed_offset, src + run.oh * plane_w + run.ow, run.length);
          }
        }
      }
    }
  } else {
    Im2ColRuns(x, g, channels, runs, width_panel, packed);
  }
  if (const int64_t tail = width % width_panel; tail != 0) {
    float* last = packed + (width / width_panel) * panel_floats + tail;
    for (int64_t r = 0; r < rows; ++r) ZeroRun(last + r * width_panel, width_panel - tail);
  }
}

// Refuses a kernel_shape attribute that disagrees with the weights' spatial dims (a malformed
// model): every path sizes its work by one of the two.
absl::Status CheckKernelShape(const WindowAttrs& window, const Shape& weights) {
  if (window.kernel_shape.empty() ||
      (weights.size() >= 2 && std::equal(window.kernel_shape.begin(), window.kernel_shape.end(),
                                         weights.begin() + 2, weights.end()))) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("Conv kernel_shape [", absl::StrJoin(window.kernel_shape, ","),
                   "] does not match the weights ", ShapeToString(weights)));
}

class ConvKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<ConvKernel>> Create(const KernelInfo& info) {
    auto k = std::unique_ptr<ConvKernel>(new ConvKernel());
    ASSIGN_OR_RETURN(k->window_, ReadWindowAttrs(info.attrs()));
    ASSIGN_OR_RETURN(k->group_, info.attrs().GetInt("group", 1));
    if (k->group_ < 1) return absl::InvalidArgumentError("group must be positive");
    // Constant weights are prepared once, here, for the paths this layer can take: all of them
    // when the output size is unknown until run time, else only the one Compute() will pick.
    const Tensor* w = info.constant_input(1);
    if (w != nullptr) RETURN_IF_ERROR(CheckKernelShape(k->window_, w->shape()));
    if (w != nullptr && w->dtype() == DType::kFloat32 && w->rank() >= 3 &&
        w->dim(0) % k->group_ == 0) {
      const int64_t mg = w->dim(0) / k->group_;
      const bool depthwise = w->dim(1) == 1 && k->group_ == w->dim(0) && w->rank() <= 4;
      const TensorInfo* out = info.output_info(0);
      bool known = out != nullptr && out->has_shape && out->dims.size() == w->shape().size();
      int64_t positions = 1;
      for (size_t d = 2; known && d < out->dims.size(); ++d) {
        known = out->dims[d] >= 0;
        positions *= std::max<int64_t>(out->dims[d], 0);
      }
      bool winograd = k->group_ == 1 && w->rank() == 4 && w->dim(2) == 3 && w->dim(3) == 3;
      for (int64_t v : k->window_.strides) winograd = winograd && v == 1;
      for (int64_t v : k->window_.dilations) winograd = winograd && v == 1;
      const bool winograd_shape = winograd;
      winograd = winograd && (!known || WinogradConv::EnoughTiles(out->dims[2], out->dims[3]));
      const bool transposed =
          !depthwise && (!known || (!winograd && PrefersTransposed(positions, mg)));
      const bool gemm = !depthwise && (!known || (!winograd && !transposed));
      const int64_t out_h = known ? out->dims[2] : 0;
      const int64_t out_w = known && out->dims.size() > 3 ? out->dims[3] : 0;
      if (winograd_shape && SmallWinograd::WorthPreparing(*w, known, out_h, out_w)) {
        k->small_winograd_ = std::make_unique<SmallWinograd>(*w, known, out_h, out_w);
      }
      // With the output size known, a small-map Winograd layer never takes the direct kernel.
      bool direct = k->group_ == 1 && !(known && k->small_winograd_ != nullptr) &&
                    DirectConv2d::WorthPreparing(*w, known, out_h, out_w);
      for (int64_t v : k->window_.strides) direct = direct && v == 1;
      if (direct) k->direct_ = std::make_unique<DirectConv2d>(*w);
      if (winograd) k->winograd_ = std::make_unique<WinogradConv>(*w);
      if (transposed) k->packed_t_ = PackWeightsTransposed(*w, k->group_);
      if (gemm) k->packed_ = PackWeights(*w, k->group_);
    }
    if (info.attrs().Has(kFusedActivation)) {
      k->clamp_ = true;
      ASSIGN_OR_RETURN(k->lo_, info.attrs().GetFloat(kFusedClipMin, 0));
      ASSIGN_OR_RETURN(k->hi_, info.attrs().GetFloat(kFusedClipMax, 0));
    }
    return k;
  }

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "X"));
    ASSIGN_OR_RETURN(const Tensor* w, RequireInput(ctx, 1, "W"));
    const Tensor* b = ctx.input(2);
    if (x->dtype() != DType::kFloat32) return UnsupportedType("Conv", x->dtype());
    if (w->dtype() != DType::kFloat32 || (b && b->dtype() != DType::kFloat32)) {
      return absl::InvalidArgumentError("Conv weights and bias must be float32 like the input");
    }
    if (x->rank() < 3 || w->rank() != x->rank()) {
      return absl::InvalidArgumentError(absl::StrCat("Conv input ", ShapeToString(x->shape()),
                                                     " and weights ", ShapeToString(w->shape()),
                                                     " must have the same rank, at least 3"));
    }
    const int64_t n = x->dim(0), c = x->dim(1), m = w->dim(0);
    if (c != w->dim(1) * group_ || m % group_ != 0) {
      return absl::InvalidArgumentError(absl::StrCat("Conv input has ", c, " channels; weights ",
                                                     ShapeToString(w->shape()), " with group ",
                                                     group_, " expect ", w->dim(1) * group_));
    }
    if (b && b->num_elements() != m) {
      return absl::InvalidArgumentError(
          absl::StrCat("Conv bias has ", b->num_elements(), " values; expected ", m));
    }
    const Shape& xs = x->shape();
    const Shape& ws = w->shape();
    ASSIGN_OR_RETURN(WindowGeometry g, ComputeWindow(window_, absl::MakeConstSpan(xs).subspan(2),
                                                     absl::MakeConstSpan(ws).subspan(2)));
    RETURN_IF_ERROR(CheckKernelShape(window_, ws));
    Shape out_shape = {n, m};
    g.AppendOutDims(out_shape);
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, DType::kFloat32, out_shape));
    if (y->num_elements() == 0) return absl::OkStatus();
    const float* bias = b ? b->data<float>() : nullptr;
    ctx.ReportFlops(2.0 * y->num_elements() * (w->num_elements() / m));
    // A residual (a following Add folded in by the planner) goes into the GEMM's store when
    // it has the output's shape; otherwise it is added, with broadcasting, afterwards.
    const Tensor* residual = ctx.input(3);
    if (residual != nullptr && residual->dtype() != DType::kFloat32) {
      return absl::InvalidArgumentError("Conv residual input must be float32");
    }
    const bool fuse_residual = residual == nullptr || residual->shape() == y->shape();
    GemmEpilogue ep;
    ep.bias = bias;
    ep.residual = residual && fuse_residual ? residual->data<float>() : nullptr;
    ep.clamp = clamp_ && fuse_residual;
    ep.lo = lo_;
    ep.hi = hi_;
    bool residual_done = ep.residual == nullptr;
    if (winograd_ != nullptr && WinogradConv::Applies(g)) {
      winograd_->Run(ctx.pool(), *x, g, ep, y);
      residual_done = residual == nullptr || fuse_residual;
    } else if (small_winograd_ != nullptr && small_winograd_->Applies(g, c)) {
      small_winograd_->Run(ctx.pool(), *x, g, ep, y);
      residual_done = residual == nullptr || fuse_residual;
    } else if (direct_ != nullptr && direct_->Applies(g, c)) {
      direct_->Run(ctx.pool(), *x, g, ep, y);
      residual_done = residual == nullptr || fuse_residual;
    } else if (group_ == c && m == c && g.spatial <= 2) {
      DepthwiseConv2d(ctx.pool(), x->data<float>(), w->data<float>(), bias, g, n, c,
                      ep.clamp && residual == nullptr, lo_, hi_, y->data<float>());
      residual_done = residual == nullptr;
    } else {
      GemmConv(ctx, *x, *w, ep, g, y);
      residual_done = residual == nullptr || fuse_residual;
    }
    if (!residual_done) {
      const Tensor conv_out = *y;
      const bool clamp = clamp_;
      const float lo = lo_, hi = hi_;
      return BroadcastBinary<float>(ctx, conv_out, *residual, [=](float u, float v) {
        return clamp ? std::min(hi, std::max(lo, u + v)) : u + v;
      });
    }
    return absl::OkStatus();
  }

 private:
  ConvKernel() = default;

  // W^T per group as a packed B operand (output channels as columns), for small images.
  static std::vector<std::shared_ptr<Buffer>> PackWeightsTransposed(const Tensor& w,
                                                                    int64_t group) {
    const int64_t mg = w.dim(0) / group;
    const int64_t k = w.num_elements() / w.dim(0);
    std::vector<std::shared_ptr<Buffer>> packed;
    for (int64_t g = 0; g < group; ++g) {
      auto buffer = Buffer::Allocate(PackedBSize(k, mg) * sizeof(float));
      if (buffer == nullptr) return {};
      PackBTransposed(w.data<float>() + g * mg * k, k, k, mg, static_cast<float*>(buffer->data()));
      packed.push_back(std::move(buffer));
    }
    return packed;
  }

  // Fraction of GEMM work that is not padding when `rows` rows are computed in panels of
  // `row_panel` and `cols` columns in panels of `col_panel`.
  static double Useful(int64_t rows, int64_t row_panel, int64_t cols, int64_t col_panel) {
    const auto up = [](int64_t v, int64_t q) { return (v + q - 1) / q * q; };
    return static_cast<double>(rows) * cols / (up(rows, row_panel) * up(cols, col_panel));
  }

  // Whether `positions` outputs per image and `mg` channels per group go through
  // TransposedConv rather than the channels-as-rows GEMM.
  static bool PrefersTransposed(int64_t positions, int64_t mg) {
    return Useful(positions, kGemmMr, mg, kGemmNr) >
           kTransposedAdvantage * Useful(mg, kGemmMr, positions, kGemmNr);
  }

  // Positions as GEMM rows (8-row panels) and output channels as 32-column panels: for small
  // images this pads less (7x7 = 49 positions pad to 56 instead of 64). All images of the batch
  // are stacked as rows (each padded to whole panels): im2col into a shared packed A, then one
  // GEMM split over row groups and output-channel panels, each task transposing its block into
  // NCHW with bias and activation.
  void TransposedConv(KernelContext& ctx, const Tensor& x, const GemmEpilogue& ep,
                      const WindowGeometry& g, int64_t cg, int64_t mg, bool pointwise,
                      Tensor* y) const {
    const int64_t n = x.dim(0), c = x.dim(1), m = y->dim(1);
    const int64_t k = cg * g.kernel_size();
    const int64_t p = g.out_size();
    const int64_t image_panels = (p + kGemmMr - 1) / kGemmMr;
    const int64_t a_panels = n * image_panels;
    const int64_t rows = a_panels * kGemmMr;
    const int64_t b_panels = (mg + kGemmNr - 1) / kGemmNr;
    // Shared by the pool's tasks; owned by (and reused across calls on) the calling thread.
    float* a = ThreadScratch(4, rows * k);
    float* ct = ThreadScratch(5, rows * mg);
    const int64_t threads = ctx.pool().num_threads();
    const int64_t row_groups =
        std::min(a_panels, std::max<int64_t>(1, (2 * threads + b_panels - 1) / b_panels));
    for (int64_t gi = 0; gi < group_; ++gi) {
      // im2col per (image, chunk of whole panels), so each call covers many positions.
      const int64_t chunks = std::max<int64_t>(1, std::min(image_panels, 2 * threads / n));
      ctx.pool().ParallelTasks(n * chunks, [&](int64_t t) {
        const int64_t img = t / chunks, ch = t % chunks;
        const int64_t q0 = image_panels * ch / chunks, q1 = image_panels * (ch + 1) / chunks;
        if (q0 == q1) return;
        const int64_t r0 = q0 * kGemmMr, r1 = std::min(p, q1 * kGemmMr);
        const float* xi = x.data<float>() + (img * c + gi * cg) * g.in_size();
        float* panel = a + (img * image_panels + q0) * kGemmMr * k;
        if (pointwise) {
          PackPanels(xi + r0, p, k, r1 - r0, kGemmMr, panel);
        } else {
          Im2ColPacked(xi, g, cg, r0, r1, kGemmMr, panel);
        }
      });
      const float* wt = static_cast<const float*>(packed_t_[gi]->data());
      ctx.pool().ParallelTasks(row_groups * b_panels, [&](int64_t t) {
        const int64_t jp = t / row_groups, rg = t % row_groups;
        const int64_t q0 = a_panels * rg / row_groups, q1 = a_panels * (rg + 1) / row_groups;
        const int64_t c0 = jp * kGemmNr, c1 = std::min(mg, c0 + kGemmNr);
        SgemmPacked(PackedARef{a, rows, k}, q0, q1, c1 - c0, wt + jp * k * kGemmNr, ct + c0, mg);
        for (int64_t q = q0; q < q1; ++q) {
          const int64_t img = q / image_panels;
          const int64_t r0 = (q % image_panels) * kGemmMr, r1 = std::min(p, r0 + kGemmMr);
          const float* src = ct + q * kGemmMr * mg;
          const int64_t offset = (img * m + gi * mg) * p;
          float* yi = y->data<float>() + offset;
          const float* res = ep.residual ? ep.residual + offset : nullptr;
          for (int64_t mo = c0; mo < c1; ++mo) {
            float* out = yi + mo * p;
            const float b = ep.bias ? ep.bias[gi * mg + mo] : 0.0f;
            for (int64_t r = r0; r < r1; ++r) {
              float v = src[(r - r0) * mg + mo] + b;
              if (res) v += res[mo * p + r];
              out[r] = ep.clamp ? std::min(ep.hi, std::max(ep.lo, v)) : v;
            }
          }
        }
      });
    }
  }

  static std::vector<PackedA> PackWeights(const Tensor& w, int64_t group) {
    const int64_t mg = w.dim(0) / group;
    const int64_t k = w.num_elements() / w.dim(0);
    std::vector<PackedA> packed;
    for (int64_t g = 0; g < group; ++g) {
      packed.emplace_back(w.data<float>() + g * mg * k, k, mg, k);
    }
    return packed;
  }

  void GemmConv(KernelContext& ctx, const Tensor& x, const Tensor& w, const GemmEpilogue& ep,
                const WindowGeometry& g, Tensor* y) const {
    const int64_t n = x.dim(0), c = x.dim(1), m = w.dim(0);
    const int64_t cg = c / group_, mg = m / group_;
    const int64_t k = cg * g.kernel_size();
    const int64_t p = g.out_size();
    const int64_t in_size = g.in_size();
    bool pointwise = g.kernel_size() == 1;
    for (int d = 0; d < kMaxSpatial; ++d) {
      pointwise = pointwise && g.stride[d] == 1 && g.pad_begin[d] == 0 && g.pad_end[d] == 0;
    }
    if (!packed_t_.empty() && PrefersTransposed(p, mg)) {
      TransposedConv(ctx, x, ep, g, cg, mg, pointwise, y);
      return;
    }
    std::vector<PackedA> local;
    const std::vector<PackedA>* packed = &packed_;
    if (packed_.empty()) {  // weights computed at run time
      local = PackWeights(w, group_);
      packed = &local;
    }
    // Tasks: (image, group) x column blocks x row splits. Blocks are whole GEMM panels of about
    // kColumnBlock columns, their count rounded so the pool's threads get equal shares; row
    // splits only when there are too few blocks to occupy the pool.
    // When the weights outweigh the image (mg >= p) and there are fewer images than threads,
    // threads split the output channels rather than the columns, so each streams only its
    // share of the weights.
    const int threads = ctx.pool().num_threads();
    const int64_t images = n * group_;
    const int64_t col_panels = (p + kGemmNr - 1) / kGemmNr;
    int64_t blocks = (col_panels * kGemmNr + kColumnBlock - 1) / kColumnBlock;
    const bool split_rows = images < threads && mg >= p;
    if (images % threads != 0 && !split_rows) {
      blocks = (blocks + threads - 1) / threads * threads;
    }
    blocks = std::max<int64_t>(1, std::min(blocks, col_panels));
    const int64_t panels = (*packed)[0].panels();
    int64_t splits = 1;
    if (images * blocks < threads) {
      splits = std::min<int64_t>(panels, (threads + images * blocks - 1) / (images * blocks));
    }
    const float* xd = x.data<float>();
    float* yd = y->data<float>();
    ctx.pool().ParallelTasks(images * blocks * splits, [&](int64_t t) {
      const int64_t split = t % splits;
      const int64_t rest = t / splits;
      const int64_t img = rest / blocks;
      const int64_t ni = img / group_, gi = img % group_;
      const int64_t bi = rest % blocks;
      const int64_t p0 = col_panels * bi / blocks * kGemmNr;
      const int64_t p1 = std::min(p, col_panels * (bi + 1) / blocks * kGemmNr);
      const int64_t nb = p1 - p0;
      const float* xi = xd + (ni * c + gi * cg) * in_size;
      float* yi = yd + (ni * m + gi * mg) * p + p0;
      const int64_t panel0 = panels * split / splits, panel1 = panels * (split + 1) / splits;
      float* packed_b = ThreadScratch(0, PackedBSize(k, nb));
      if (pointwise) {
        PackPanels(xi + p0, in_size, k, nb, kGemmNr, packed_b);
      } else {
        Im2ColPacked(xi, g, cg, p0, p1, kGemmNr, packed_b);
      }
      GemmEpilogue task_ep = ep;
      if (ep.bias) task_ep.bias = ep.bias + gi * mg;
      if (ep.residual) task_ep.residual = ep.residual + (yi - yd);
      SgemmPacked((*packed)[gi], panel0, panel1, nb, packed_b, yi, p, &task_ep);
    });
  }

  WindowAttrs window_;
  int64_t group_ = 1;
  std::vector<PackedA> packed_;                    // per group, when the weights are constant
  std::vector<std::shared_ptr<Buffer>> packed_t_;  // W^T per group, for TransposedConv
  std::unique_ptr<WinogradConv> winograd_;         // 3x3 constant weights, group 1
  std::unique_ptr<SmallWinograd> small_winograd_;  // 3x3 on small outputs, constant weights
  std::unique_ptr<DirectConv2d> direct_;           // small stride-1 outputs, constant weights
  bool clamp_ = false;
  float lo_ = 0, hi_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateConv(const KernelInfo& info) {
  return MakeKernel<ConvKernel>(info);
}

}  // namespace inferd::models::cpu
