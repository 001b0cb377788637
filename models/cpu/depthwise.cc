#include "models/cpu/depthwise.h"

#include <algorithm>
#include <cstring>

#include "models/cpu/sgemm.h"
#include "models/cpu/simd.h"

namespace inferd::models::cpu {
namespace {

using S = simd::Isa;
constexpr int64_t kLanes = S::kLanes;  // outputs accumulated in one register

// Copies the plane's interior into the zero-padded buffer; the caller zeroes the borders once,
// and every plane of a call shares them.
void PadPlane(const float* x, const WindowGeometry& g, int64_t pw, float* pad) {
  const int64_t ih = g.in[1], iw = g.in[2], top = g.pad_begin[1], left = g.pad_begin[2];
  for (int64_t r = 0; r < ih; ++r) {
    std::memcpy(pad + (r + top) * pw + left, x + r * iw, iw * sizeof(float));
  }
}

}  // namespace

void DepthwiseConv2d(ThreadPool& pool, const float* x, const float* w, const float* bias,
                     const WindowGeometry& g, int64_t n, int64_t c, bool clamp, float lo, float hi,
                     float* y) {
  const int64_t ih = g.in[1], iw = g.in[2], oh = g.out[1], ow = g.out[2];
  const int64_t kh = g.kernel[1], kw = g.kernel[2];
  const int64_t sh = g.stride[1], sw = g.stride[2], dh = g.dilation[1], dw = g.dilation[2];
  const int64_t ph = std::max(g.pad_begin[1] + ih, (oh - 1) * sh + (kh - 1) * dh + 1);
  const int64_t pw = std::max(g.pad_begin[2] + iw, (ow - 1) * sw + (kw - 1) * dw + 1);
  // Slack after the plane: the stride-2 path loads 32 columns at a time.
  const int64_t slack = 2 * kLanes;
  pool.ParallelFor(n * c, 1, [&](int64_t begin, int64_t end) {
    float* pad = ThreadScratch(2, ph * pw + slack);
    std::memset(pad, 0, (ph * pw + slack) * sizeof(float));  // borders, shared by all planes
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t ch = plane % c;
      PadPlane(x + plane * ih * iw, g, pw, pad);
      const float* wk = w + ch * kh * kw;
      const float b = bias ? bias[ch] : 0.0f;
      float* yp = y + plane * oh * ow;
      for (int64_t r = 0; r < oh; ++r) {
        float* out = yp + r * ow;
        const float* rows = pad + r * sh * pw;
        int64_t j0 = 0;
        if (simd::kVectorKernels && sw <= 2) {
          const S::V vb = S::Set1(b), vlo = S::Set1(lo), vhi = S::Set1(hi);
          for (; j0 < ow; j0 += kLanes) {
            const int lanes = static_cast<int>(std::min(kLanes, ow - j0));
            S::V acc = vb;
            for (int64_t a = 0; a < kh; ++a) {
              const float* row = rows + a * dh * pw;
              for (int64_t e = 0; e < kw; ++e) {
                const S::V wv = S::Set1(wk[a * kw + e]);
                // Stride 2: columns 2j + e of a vector of outputs are every other float of two
                // vectors' worth.
                const S::V v = sw == 1 ? S::LoadFirst(row + e * dw + j0, lanes)
                                       : S::LoadEven(row + e * dw + 2 * j0);
                acc = S::Fma(wv, v, acc);
              }
            }
            if (clamp) acc = S::Min(vhi, S::Max(vlo, acc));
            S::StoreFirst(out + j0, lanes, acc);
          }
        }
        for (int64_t j = j0; j < ow; ++j) {
          float acc = b;
          for (int64_t a = 0; a < kh; ++a) {
            for (int64_t e = 0; e < kw; ++e) {
              acc += wk[a * kw + e] * rows[a * dh * pw + e * dw + j * sw];
            }
          }
          out[j] = clamp ? std::min(hi, std::max(lo, acc)) : acc;
        }
      }
    }
  });
}

}  // namespace inferd::models::cpu
