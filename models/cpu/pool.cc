// MaxPool (with optional Indices), AveragePool, GlobalAveragePool, GlobalMaxPool over 1-3
// spatial dimensions.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "common/status_macros.h"
#include "models/cpu/elementwise.h"
#include "models/cpu/kernels.h"
#include "models/cpu/sgemm.h"
#include "models/cpu/window.h"

namespace inferd::models::cpu {
namespace {

enum class PoolKind { kMax, kAverage };

class PoolKernel : public Kernel {
 public:
  static absl::StatusOr<std::unique_ptr<PoolKernel>> Create(const KernelInfo& info, PoolKind kind) {
    auto k = std::unique_ptr<PoolKernel>(new PoolKernel());
    k->kind_ = kind;
    ASSIGN_OR_RETURN(k->window_, ReadWindowAttrs(info.attrs()));
    if (k->window_.kernel_shape.empty()) {
      return absl::InvalidArgumentError("missing attribute 'kernel_shape'");
    }
    ASSIGN_OR_RETURN(int64_t include_pad, info.attrs().GetInt("count_include_pad", 0));
    ASSIGN_OR_RETURN(k->storage_order_, info.attrs().GetInt("storage_order", 0));
    k->count_include_pad_ = include_pad != 0;
    return k;
  }

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "X"));
    if (x->rank() < 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("pooling needs an input of rank >= 3, got ", ShapeToString(x->shape())));
    }
    ASSIGN_OR_RETURN(WindowGeometry g,
                     ComputeWindow(window_, absl::MakeConstSpan(x->shape()).subspan(2), {}));
    Shape out_shape = {x->dim(0), x->dim(1)};
    g.AppendOutDims(out_shape);
    absl::Status status;
    const bool known = DispatchDType(x->dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, bool>) {
        status = UnsupportedType("pooling", x->dtype());
      } else {
        status = Run<T>(ctx, *x, g, out_shape);
      }
    });
    if (!known) return UnsupportedType("pooling", x->dtype());
    return status;
  }

 private:
  PoolKernel() = default;

  // Number of window taps along one axis that fall inside [lo, hi), per output position.
  static std::vector<float> TapCounts(const WindowGeometry& g, int d, int64_t lo, int64_t hi) {
    std::vector<float> counts(g.out[d]);
    for (int64_t o = 0; o < g.out[d]; ++o) {
      int64_t n = 0;
      for (int64_t t = 0; t < g.kernel[d]; ++t) {
        const int64_t i = o * g.stride[d] - g.pad_begin[d] + t * g.dilation[d];
        n += i >= lo && i < hi;
      }
      counts[o] = static_cast<float>(n);
    }
    return counts;
  }

  // float32, up to two spatial dims, no Indices: each plane is copied into a buffer padded with
  // the identity of the reduction, then reduced separably: every padded row horizontally, then
  // those rows vertically (kh + kw operations per output instead of kh * kw).
  void Run2d(KernelContext& ctx, const Tensor& x, const WindowGeometry& g, Tensor* y) const {
    const bool is_max = kind_ == PoolKind::kMax;
    const int64_t ih = g.in[1], iw = g.in[2], oh = g.out[1], ow = g.out[2];
    const int64_t ph = std::max(g.pad_begin[1] + ih,
                                (oh - 1) * g.stride[1] + (g.kernel[1] - 1) * g.dilation[1] + 1);
    const int64_t pw = std::max(g.pad_begin[2] + iw,
                                (ow - 1) * g.stride[2] + (g.kernel[2] - 1) * g.dilation[2] + 1);
    const float fill = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
    const float* xd = x.data<float>();
    float* yd = y->data<float>();
    const int64_t planes = x.dim(0) * x.dim(1);
    // 2x2 windows at stride 2 tiling the input exactly (the classic downsampling pool): output
    // row R of all planes together reads input rows 2R and 2R + 1, so the whole tensor is
    // reduced in two long vectorised passes, vertical then horizontal pairs.
    if (g.kernel[1] == 2 && g.kernel[2] == 2 && g.stride[1] == 2 && g.stride[2] == 2 &&
        g.dilation[1] == 1 && g.dilation[2] == 1 && g.pad_begin[1] == 0 && g.pad_begin[2] == 0 &&
        ih == 2 * oh && iw == 2 * ow) {
      ctx.pool().ParallelFor(planes * oh, 16, [&](int64_t r0, int64_t r1) {
        float* v = ThreadScratch(6, (r1 - r0) * iw);
        for (int64_t r = r0; r < r1; ++r) {
          const float* a = xd + 2 * r * iw;
          const float* b = a + iw;
          float* vr = v + (r - r0) * iw;
          if (is_max) {
            for (int64_t i = 0; i < iw; ++i) vr[i] = std::max(a[i], b[i]);
          } else {
            for (int64_t i = 0; i < iw; ++i) vr[i] = a[i] + b[i];
          }
        }
        float* out = yd + r0 * ow;
        const int64_t n = (r1 - r0) * ow;
        if (is_max) {
          for (int64_t k = 0; k < n; ++k) out[k] = std::max(v[2 * k], v[2 * k + 1]);
        } else {
          for (int64_t k = 0; k < n; ++k) out[k] = (v[2 * k] + v[2 * k + 1]) * 0.25f;
        }
      });
      return;
    }
    // Windows inside the input whose taps are no more than their two sides (2x2, 1xN, Nx1):
    // each is reduced where it lies; a padded copy and separable passes would save nothing.
    const int64_t kh = g.kernel[1], kw = g.kernel[2];
    if (ph == ih && pw == iw && g.pad_begin[1] == 0 && g.pad_begin[2] == 0 && kh + kw >= kh * kw) {
      const float scale = 1.0f / static_cast<float>(kh * kw);
      ctx.pool().ParallelFor(planes, 1, [&](int64_t p0, int64_t p1) {
        for (int64_t plane = p0; plane < p1; ++plane) {
          const float* xp = xd + plane * ih * iw;
          float* yp = yd + plane * oh * ow;
          // Per output row: the window's input rows reduced into one (contiguous, vectorised),
          // then that row's windows reduced across.
          float* v = ThreadScratch(6, iw);
          for (int64_t r = 0; r < oh; ++r) {
            const float* x0 = xp + r * g.stride[1] * iw;
            std::copy(x0, x0 + iw, v);
            for (int64_t a = 1; a < kh; ++a) {
              const float* xa = x0 + a * g.dilation[1] * iw;
              if (is_max) {
                for (int64_t i = 0; i < iw; ++i) v[i] = std::max(v[i], xa[i]);
              } else {
                for (int64_t i = 0; i < iw; ++i) v[i] += xa[i];
              }
            }
            float* out = yp + r * ow;
            for (int64_t j = 0; j < ow; ++j) {
              const float* w = v + j * g.stride[2];
              float acc = w[0];
              for (int64_t e = 1; e < kw; ++e) {
                acc = is_max ? std::max(acc, w[e * g.dilation[2]]) : acc + w[e * g.dilation[2]];
              }
              out[j] = is_max ? acc : acc * scale;
            }
          }
        }
      });
      return;
    }
    std::vector<float> inv_h, inv_w;
    if (!is_max) {
      // Divisors are separable: taps inside the input (or the padded input) per axis.
      const bool inc = count_include_pad_;
      std::vector<float> ch =
          TapCounts(g, 1, inc ? -g.pad_begin[1] : 0, inc ? ih + g.pad_end[1] : ih);
      std::vector<float> cw =
          TapCounts(g, 2, inc ? -g.pad_begin[2] : 0, inc ? iw + g.pad_end[2] : iw);
      for (float c : ch) inv_h.push_back(c > 0 ? 1.0f / c : 0.0f);
      for (float c : cw) inv_w.push_back(c > 0 ? 1.0f / c : 0.0f);
    }
    ctx.pool().ParallelFor(planes, 1, [&](int64_t p0, int64_t p1) {
      float* pad = ThreadScratch(3, ph * pw);
      float* rows = ThreadScratch(6, ph * std::max(ow, pw));
      float* cols = ThreadScratch(7, oh * pw);
      const bool unit =
          g.stride[1] == 1 && g.stride[2] == 1 && g.dilation[1] == 1 && g.dilation[2] == 1;
      // Every plane has the same geometry: fill the borders once; planes overwrite only the
      // interior.
      std::fill(pad, pad + ph * pw, fill);
      for (int64_t plane = p0; plane < p1; ++plane) {
        const float* xp = xd + plane * ih * iw;
        for (int64_t r = 0; r < ih; ++r) {
          std::memcpy(pad + (r + g.pad_begin[1]) * pw + g.pad_begin[2], xp + r * iw,
                      iw * sizeof(float));
        }
        float* yp = yd + plane * oh * ow;
        if (unit) {
          // Stride 1: both passes run over the padded plane as one long array (positions
          // past a row's last window are computed and ignored), then rows are compacted.
          const int64_t span = ph * pw - (g.kernel[2] - 1);
          for (int64_t i = 0; i < span; ++i) rows[i] = pad[i];
          for (int64_t e = 1; e < g.kernel[2]; ++e) {
            const float* s = pad + e;
            if (is_max) {
              for (int64_t i = 0; i < span; ++i) rows[i] = std::max(rows[i], s[i]);
            } else {
              for (int64_t i = 0; i < span; ++i) rows[i] += s[i];
            }
          }
          const int64_t out_span = (oh - 1) * pw + ow;
          std::copy(rows, rows + out_span, cols);
          for (int64_t a = 1; a < g.kernel[1]; ++a) {
            const float* s = rows + a * pw;
            if (is_max) {
              for (int64_t i = 0; i < out_span; ++i) cols[i] = std::max(cols[i], s[i]);
            } else {
              for (int64_t i = 0; i < out_span; ++i) cols[i] += s[i];
            }
          }
          for (int64_t r = 0; r < oh; ++r) {
            const float* src = cols + r * pw;
            float* out = yp + r * ow;
            if (is_max) {
              std::copy(src, src + ow, out);
            } else {
              const float ir = inv_h[r];
              for (int64_t j = 0; j < ow; ++j) out[j] = src[j] * ir * inv_w[j];
            }
          }
          continue;
        }
        // Separable: reduce each padded row horizontally, then columns of those rows.
        for (int64_t r = 0; r < ph; ++r) {
          const float* src = pad + r * pw;
          float* h = rows + r * ow;
          const int64_t sw = g.stride[2];
          for (int64_t j = 0; j < ow; ++j) h[j] = fill;
          for (int64_t e = 0; e < g.kernel[2]; ++e) {
            const float* s = src + e * g.dilation[2];
            if (is_max) {
              if (sw == 1) {
                for (int64_t j = 0; j < ow; ++j) h[j] = std::max(h[j], s[j]);
              } else {
                for (int64_t j = 0; j < ow; ++j) h[j] = std::max(h[j], s[j * sw]);
              }
            } else {
              if (sw == 1) {
                for (int64_t j = 0; j < ow; ++j) h[j] += s[j];
              } else {
                for (int64_t j = 0; j < ow; ++j) h[j] += s[j * sw];
              }
            }
          }
        }
        for (int64_t r = 0; r < oh; ++r) {
          float* out = yp + r * ow;
          const float* first = rows + (r * g.stride[1]) * ow;
          std::copy(first, first + ow, out);
          for (int64_t a = 1; a < g.kernel[1]; ++a) {
            const float* h = rows + (r * g.stride[1] + a * g.dilation[1]) * ow;
            if (is_max) {
              for (int64_t j = 0; j < ow; ++j) out[j] = std::max(out[j], h[j]);
            } else {
              for (int64_t j = 0; j < ow; ++j) out[j] += h[j];
            }
          }
          if (!is_max) {
            const float ir = inv_h[r];
            for (int64_t j = 0; j < ow; ++j) out[j] *= ir * inv_w[j];
          }
        }
      }
    });
  }

  template <typename T>
  absl::Status Run(KernelContext& ctx, const Tensor& x, const WindowGeometry& g,
                   const Shape& out_shape) const {
    using C = ComputeType<T>;
    if (kind_ == PoolKind::kAverage && !kIsFloating<T>) {
      return UnsupportedType("AveragePool", x.dtype());
    }
    ASSIGN_OR_RETURN(Tensor * y, ctx.Allocate(0, x.dtype(), out_shape));
    if constexpr (std::is_same_v<T, float>) {
      if (g.spatial <= 2 && ctx.num_outputs() == 1 && y->num_elements() > 0) {
        Run2d(ctx, x, g, y);
        return absl::OkStatus();
      }
    }
    int64_t* indices = nullptr;
    if (kind_ == PoolKind::kMax && ctx.num_outputs() > 1) {
      ASSIGN_OR_RETURN(Tensor * ind, ctx.Allocate(1, DType::kInt64, out_shape));
      indices = ind->data<int64_t>();
    }
    const T* xd = x.data<T>();
    T* yd = y->data<T>();
    const int64_t planes = x.dim(0) * x.dim(1);
    const int64_t in_size = g.in_size(), out_size = g.out_size();
    ctx.pool().ParallelFor(planes, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t plane = p0; plane < p1; ++plane) {
        const T* xp = xd + plane * in_size;
        T* yp = yd + plane * out_size;
        int64_t o = 0;
        for (int64_t od = 0; od < g.out[0]; ++od) {
          for (int64_t oh = 0; oh < g.out[1]; ++oh) {
            for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
              const int64_t start[3] = {od * g.stride[0] - g.pad_begin[0],
                                        oh * g.stride[1] - g.pad_begin[1],
                                        ow * g.stride[2] - g.pad_begin[2]};
              C best = std::numeric_limits<C>::lowest();
              if constexpr (std::is_floating_point_v<C>) {
                best = -std::numeric_limits<C>::infinity();
              }
              int64_t best_at = -1;
              double sum = 0;
              int64_t count = 0;
              for (int64_t a = 0; a < g.kernel[0]; ++a) {
                const int64_t id = start[0] + a * g.dilation[0];
                if (id < 0 || id >= g.in[0]) continue;
                for (int64_t b = 0; b < g.kernel[1]; ++b) {
                  const int64_t ih = start[1] + b * g.dilation[1];
                  if (ih < 0 || ih >= g.in[1]) continue;
                  for (int64_t e = 0; e < g.kernel[2]; ++e) {
                    const int64_t iw = start[2] + e * g.dilation[2];
                    if (iw < 0 || iw >= g.in[2]) continue;
                    const int64_t at = (id * g.in[1] + ih) * g.in[2] + iw;
                    const C v = static_cast<C>(xp[at]);
                    if (kind_ == PoolKind::kMax) {
                      if (v > best || best_at < 0) {
                        best = v;
                        best_at =
                            storage_order_ == 0 ? at : id + ih * g.in[0] + iw * g.in[0] * g.in[1];
                      }
                    } else {
                      sum += static_cast<double>(v);
                      ++count;
                    }
                  }
                }
              }
              if (kind_ == PoolKind::kMax) {
                yp[o] = static_cast<T>(best);
                if (indices) indices[plane * out_size + o] = plane * in_size + best_at;
              } else {
                if (count_include_pad_) {
                  count = 1;
                  for (int d = 0; d < kMaxSpatial; ++d) {
                    const int64_t lo = start[d];
                    const int64_t hi = std::min(start[d] + g.kernel[d], g.in[d] + g.pad_end[d]);
                    count *= std::max<int64_t>(0, hi - lo);
                  }
                }
                yp[o] = static_cast<T>(count > 0 ? sum / count : 0.0);
              }
            }
          }
        }
      }
    });
    return absl::OkStatus();
  }

  PoolKind kind_ = PoolKind::kMax;
  WindowAttrs window_;
  bool count_include_pad_ = false;
  int64_t storage_order_ = 0;
};

class GlobalPoolKernel : public Kernel {
 public:
  explicit GlobalPoolKernel(PoolKind kind) : kind_(kind) {}

  absl::Status Compute(KernelContext& ctx) const override {
    ASSIGN_OR_RETURN(const Tensor* x, RequireInput(ctx, 0, "X"));
    if (x->rank() < 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "global pooling needs an input of rank >= 3, got ", ShapeToString(x->shape())));
    }
    Shape out_shape = {x->dim(0), x->dim(1)};
    out_shape.resize(x->rank(), 1);
    const int64_t planes = x->dim(0) * x->dim(1);
    const int64_t size = planes == 0 ? 0 : x->num_elements() / planes;
    absl::Status status;
    const bool known = DispatchDType(x->dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!kIsFloating<T>) {
        status = UnsupportedType("global pooling", x->dtype());
      } else {
        using C = ComputeType<T>;
        auto y = ctx.Allocate(0, x->dtype(), out_shape);
        if (!y.ok()) {
          status = y.status();
          return;
        }
        const T* xd = x->data<T>();
        T* yd = (*y)->template data<T>();
        ctx.pool().ParallelFor(planes, 16, [&](int64_t p0, int64_t p1) {
          for (int64_t p = p0; p < p1; ++p) {
            const T* xp = xd + p * size;
            if (kind_ == PoolKind::kAverage) {
              C sum = 0;
              for (int64_t i = 0; i < size; ++i) sum += static_cast<C>(xp[i]);
              yd[p] = static_cast<T>(size > 0 ? sum / static_cast<C>(size) : C(0));
            } else {
              C best = -std::numeric_limits<C>::infinity();
              for (int64_t i = 0; i < size; ++i) best = std::max(best, static_cast<C>(xp[i]));
              yd[p] = static_cast<T>(best);
            }
          }
        });
      }
    });
    if (!known) return UnsupportedType("global pooling", x->dtype());
    return status;
  }

 private:
  PoolKind kind_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateMaxPool(const KernelInfo& info) {
  auto k = PoolKernel::Create(info, PoolKind::kMax);
  if (!k.ok()) return k.status();
  return std::unique_ptr<Kernel>(std::move(*k));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateAveragePool(const KernelInfo& info) {
  auto k = PoolKernel::Create(info, PoolKind::kAverage);
  if (!k.ok()) return k.status();
  return std::unique_ptr<Kernel>(std::move(*k));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateGlobalAveragePool(const KernelInfo&) {
  return std::unique_ptr<Kernel>(new GlobalPoolKernel(PoolKind::kAverage));
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateGlobalMaxPool(const KernelInfo&) {
  return std::unique_ptr<Kernel>(new GlobalPoolKernel(PoolKind::kMax));
}

}  // namespace inferd::models::cpu
