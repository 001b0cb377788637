// Conv (1-3 spatial dims, groups, dilations, strides, asymmetric and automatic pads) for
// float32. Pointwise convolutions are a GEMM over the input as it lies; others go through
// im2col in cache-sized column blocks; depthwise convolutions use a direct kernel. Bias and a
// fused Relu/Clip are applied to each block while it is in cache.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "common/status_macros.h"
#include "models/cpu/sgemm.h"
#include "models/cpu/kernel_util.h"
#include "models/cpu/kernels.h"
#include "models/cpu/window.h"
#include "models/planner.h"

namespace inferd::models::cpu {
namespace {

// Output columns per task: a multiple of the GEMM panel width.
constexpr int64_t kColumnBlock = 256;

// Writes rows [c, kd, kh, kw] x columns [p0, p1) of the im2col matrix of one image/group
// straight into the GEMM's packed-B layout (PackB's), one row at a time through `row`
// (p1 - p0 floats, stays in L1).
void Im2ColPacked(const float* x, const WindowGeometry& g, int64_t channels, int64_t p0,
                  int64_t p1, float* row, float* packed) {
  const int64_t width = p1 - p0;
  const int64_t rows = channels * g.kernel_size();
  const int64_t o_hw = g.out[1] * g.out[2];
  for (int64_t c = 0; c < channels; ++c) {
    const float* xc = x + c * g.in_size();
    for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
      for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
        for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
          const int64_t r = ((c * g.kernel[0] + kd) * g.kernel[1] + kh) * g.kernel[2] + kw;
          float* dst = row;
          int64_t p = p0;
          int64_t od = p / o_hw;
          int64_t oh = (p / g.out[2]) % g.out[1];
          int64_t ow = p % g.out[2];
          while (p < p1) {
            const int64_t seg = std::min(p1 - p, g.out[2] - ow);
            const int64_t id = od * g.stride[0] - g.pad_begin[0] + kd * g.dilation[0];
            const int64_t ih = oh * g.stride[1] - g.pad_begin[1] + kh * g.dilation[1];
            if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
              std::memset(dst, 0, seg * sizeof(float));
            } else {
              const float* src = xc + (id * g.in[1] + ih) * g.in[2];
              const int64_t sw = g.stride[2];
              const int64_t iw0 = ow * sw - g.pad_begin[2] + kw * g.dilation[2];
              if (sw == 1) {
                // Valid j: 0 <= iw0 + j < in_w.
                const int64_t lo = std::clamp<int64_t>(-iw0, 0, seg);
                const int64_t hi = std::clamp<int64_t>(g.in[2] - iw0, lo, seg);
                std::memset(dst, 0, lo * sizeof(float));
                std::memcpy(dst + lo, src + iw0 + lo, (hi - lo) * sizeof(float));
                std::memset(dst + hi, 0, (seg - hi) * sizeof(float));
              } else {
                for (int64_t j = 0; j < seg; ++j) {
                  const int64_t iw = iw0 + j * sw;
                  dst[j] = (iw >= 0 && iw < g.in[2]) ? src[iw] : 0.0f;
                }
              }
            }
            p += seg;
            dst += seg;
            ow = 0;
            if (++oh == g.out[1]) {
              oh = 0;
              ++od;
            }
          }
          for (int64_t j0 = 0; j0 < width; j0 += kGemmNr) {
            const int64_t w = std::min(kGemmNr, width - j0);
            float* out = packed + (j0 / kGemmNr) * rows * kGemmNr + r * kGemmNr;
            std::memcpy(out, row + j0, w * sizeof(float));
            if (w < kGemmNr) std::memset(out + w, 0, (kGemmNr - w) * sizeof(float));
          }
        }
      }
    }
  }
}

// y[m, 0:cols] (row stride ld) += bias[m], then clamp to [lo, hi].
void Epilogue(float* y, int64_t rows, int64_t cols, int64_t ld, const float* bias, bool clamp,
              float lo, float hi) {
  for (int64_t m = 0; m < rows; ++m) {
    float* r = y + m * ld;
    const float b = bias ? bias[m] : 0.0f;
    if (clamp) {
      for (int64_t j = 0; j < cols; ++j) r[j] = std::min(hi, std::max(lo, r[j] + b));
    } else if (bias) {
      for (int64_t j = 0; j < cols; ++j) r[j] += b;
    }
  }
}

class ConvKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<ConvKernel>> Create(const KernelInfo& info) {
    auto k = std::unique_ptr<ConvKernel>(new ConvKernel());
    ASSIGN_OR_RETURN(k->window_, ReadWindowAttrs(info.attrs()));
    ASSIGN_OR_RETURN(k->group_, info.attrs().GetInt("group", 1));
    if (k->group_ < 1) return absl::InvalidArgumentError("group must be positive");
    // Constant weights are packed for the GEMM once, here.
    const Tensor* w = info.constant_input(1);
    if (w != nullptr && w->dtype() == DType::kFloat32 && w->rank() >= 3 &&
        w->dim(0) % k->group_ == 0) {
      k->packed_ = PackWeights(*w, k->group_);
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
      return absl::InvalidArgumentError(
          absl::StrCat("Conv input ", ShapeToString(x->shape()), " and weights ",
                       ShapeToString(w->shape()), " must have the same rank, at least 3"));
    }
    const int64_t n = x->dim(0), c = x->dim(1), m = w->dim(0);
    if (c != w->dim(1) * group_ || m % group_ != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Conv input has ", c, " channels; weights ", ShapeToString(w->shape()), " with group ",
          group_, " expect ", w->dim(1) * group_));
    }
    if (b && b->num_elements() != m) {
      return absl::InvalidArgumentError(
          absl::StrCat("Conv bias has ", b->num_elements(), " values; expected ", m));
    }
    const Shape& xs = x->shape();
    const Shape& ws = w->shape();
    ASSIGN_OR_RETURN(WindowGeometry g,
                     ComputeWindow(window_, absl::MakeConstSpan(xs).subspan(2),
                                   absl::MakeConstSpan(ws).subspan(2)));
    Shape out_shape = {n, m};
    g.AppendOutDims(out_shape);
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, DType::kFloat32, out_shape));
    if (y->num_elements() == 0) return absl::OkStatus();
    const float* bias = b ? b->data<float>() : nullptr;
    ctx.ReportFlops(2.0 * y->num_elements() * (w->num_elements() / m));
    if (group_ == c && m == c && g.spatial <= 2) {
      Depthwise(ctx, *x, *w, bias, g, y);
    } else {
      GemmConv(ctx, *x, *w, bias, g, y);
    }
    return absl::OkStatus();
  }

 private:
  ConvKernel() = default;

  static std::vector<PackedA> PackWeights(const Tensor& w, int64_t group) {
    const int64_t mg = w.dim(0) / group;
    const int64_t k = w.num_elements() / w.dim(0);
    std::vector<PackedA> packed;
    for (int64_t g = 0; g < group; ++g) {
      packed.emplace_back(w.data<float>() + g * mg * k, k, mg, k);
    }
    return packed;
  }

  void GemmConv(KernelContext& ctx, const Tensor& x, const Tensor& w, const float* bias,
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
    std::vector<PackedA> local;
    const std::vector<PackedA>* packed = &packed_;
    if (packed_.empty()) {  // weights computed at run time
      local = PackWeights(w, group_);
      packed = &local;
    }
    // Tasks: (image, group) x column blocks x row splits; row splits only when there are too
    // few column blocks to occupy the pool.
    const int threads = ctx.pool().num_threads();
    const int64_t images = n * group_;
    int64_t block = std::min<int64_t>(kColumnBlock, (p + kGemmNr - 1) / kGemmNr * kGemmNr);
    int64_t blocks = (p + block - 1) / block;
    if (images * blocks < threads && p > kGemmNr) {
      const int64_t want = (threads + images - 1) / images;
      block = std::max<int64_t>(kGemmNr, ((p + want - 1) / want + kGemmNr - 1) / kGemmNr * kGemmNr);
      blocks = (p + block - 1) / block;
    }
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
      const int64_t p0 = (rest % blocks) * block;
      const int64_t p1 = std::min(p, p0 + block);
      const int64_t nb = p1 - p0;
      const float* xi = xd + (ni * c + gi * cg) * in_size;
      float* yi = yd + (ni * m + gi * mg) * p + p0;
      const int64_t panel0 = panels * split / splits, panel1 = panels * (split + 1) / splits;
      float* packed_b = ThreadScratch(0, PackedBSize(k, nb));
      if (pointwise) {
        PackB(xi + p0, in_size, k, nb, packed_b);
      } else {
        Im2ColPacked(xi, g, cg, p0, p1, ThreadScratch(1, nb), packed_b);
      }
      SgemmPacked((*packed)[gi], panel0, panel1, nb, packed_b, yi, p);
      const int64_t row0 = panel0 * kGemmMr, row1 = std::min(mg, panel1 * kGemmMr);
      Epilogue(yi + row0 * p, row1 - row0, nb, p, bias ? bias + gi * mg + row0 : nullptr,
               clamp_, lo_, hi_);
    });
  }

  // One channel per task: copy the plane into a zero-padded buffer, then accumulate each
  // kernel tap over whole output rows (contiguous for stride 1, so it vectorises).
  void Depthwise(KernelContext& ctx, const Tensor& x, const Tensor& w, const float* bias,
                 const WindowGeometry& g, Tensor* y) const {
    const int64_t n = x.dim(0), c = x.dim(1);
    const int64_t ih = g.in[1], iw = g.in[2], oh = g.out[1], ow = g.out[2];
    const int64_t kh = g.kernel[1], kw = g.kernel[2];
    const int64_t sh = g.stride[1], sw = g.stride[2], dh = g.dilation[1], dw = g.dilation[2];
    const int64_t ph = std::max(g.pad_begin[1] + ih, (oh - 1) * sh + (kh - 1) * dh + 1);
    const int64_t pw = std::max(g.pad_begin[2] + iw, (ow - 1) * sw + (kw - 1) * dw + 1);
    const float* xd = x.data<float>();
    const float* wd = w.data<float>();
    float* yd = y->data<float>();
    const bool clamp = clamp_;
    const float lo = lo_, hi = hi_;
    ctx.pool().ParallelFor(n * c, 1, [&](int64_t begin, int64_t end) {
      float* pad = ThreadScratch(2, ph * pw);
      for (int64_t nc = begin; nc < end; ++nc) {
        const int64_t ch = nc % c;
        const float* xp = xd + nc * ih * iw;
        std::fill(pad, pad + ph * pw, 0.0f);
        for (int64_t r = 0; r < ih; ++r) {
          std::memcpy(pad + (r + g.pad_begin[1]) * pw + g.pad_begin[2], xp + r * iw,
                      iw * sizeof(float));
        }
        const float* wk = wd + ch * kh * kw;
        const float b = bias ? bias[ch] : 0.0f;
        float* yp = yd + nc * oh * ow;
        for (int64_t r = 0; r < oh; ++r) {
          float* out = yp + r * ow;
          for (int64_t j = 0; j < ow; ++j) out[j] = b;
          for (int64_t a = 0; a < kh; ++a) {
            const float* in_row = pad + (r * sh + a * dh) * pw;
            for (int64_t e = 0; e < kw; ++e) {
              const float wv = wk[a * kw + e];
              const float* src = in_row + e * dw;
              if (sw == 1) {
                for (int64_t j = 0; j < ow; ++j) out[j] += wv * src[j];
              } else {
                for (int64_t j = 0; j < ow; ++j) out[j] += wv * src[j * sw];
              }
            }
          }
          if (clamp) {
            for (int64_t j = 0; j < ow; ++j) out[j] = std::min(hi, std::max(lo, out[j]));
          }
        }
      }
    });
  }

  WindowAttrs window_;
  int64_t group_ = 1;
  std::vector<PackedA> packed_;  // per group, when the weights are constant
  bool clamp_ = false;
  float lo_ = 0, hi_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateConv(const KernelInfo& info) {
  return MakeKernel<ConvKernel>(info);
}

}  // namespace inferd::models::cpu
