#include "models/cpu/depthwise.h"

#include <algorithm>
#include <cstring>

#include "models/cpu/sgemm.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace inferd::models::cpu {
namespace {

constexpr int64_t kLanes = 16;  // outputs accumulated in one register

// Builds the zero-padded plane. With stride 2 each padded row is stored deinterleaved (even
// columns, then odd columns) so that every tap reads contiguously, and the whole plane is
// written. Otherwise only the interior is copied: the caller zeroes the borders once, and
// every plane of a call shares them.
void PadPlane(const float* x, const WindowGeometry& g, int64_t ph, int64_t pw, int64_t half,
              float* pad) {
  const int64_t ih = g.in[1], iw = g.in[2], top = g.pad_begin[1], left = g.pad_begin[2];
  if (g.stride[2] != 2) {
    for (int64_t r = 0; r < ih; ++r) {
      std::memcpy(pad + (r + top) * pw + left, x + r * iw, iw * sizeof(float));
    }
    return;
  }
  for (int64_t r = 0; r < ph; ++r) {
    float* dst = pad + r * pw;
    const int64_t src_row = r - top;
    if (src_row < 0 || src_row >= ih) {
      std::memset(dst, 0, pw * sizeof(float));
      continue;
    }
    SplitPaddedRow(x + src_row * iw, iw, left, half, dst, dst + half);
  }
}

}  // namespace

void DepthwiseConv2d(ThreadPool& pool, const float* x, const float* w, const float* bias,
                     const WindowGeometry& g, int64_t n, int64_t c, bool clamp, float lo,
                     float hi, float* y) {
  const int64_t ih = g.in[1], iw = g.in[2], oh = g.out[1], ow = g.out[2];
  const int64_t kh = g.kernel[1], kw = g.kernel[2];
  const int64_t sh = g.stride[1], sw = g.stride[2], dh = g.dilation[1], dw = g.dilation[2];
  const int64_t ph = std::max(g.pad_begin[1] + ih, (oh - 1) * sh + (kh - 1) * dh + 1);
  const int64_t pw_needed = std::max(g.pad_begin[2] + iw, (ow - 1) * sw + (kw - 1) * dw + 1);
  const bool split = sw == 2;
  const int64_t half = (pw_needed + 1) / 2;  // columns per parity when split
  const int64_t pw = split ? 2 * half : pw_needed;
  pool.ParallelFor(n * c, 1, [&](int64_t begin, int64_t end) {
    float* pad = ThreadScratch(2, ph * pw);
    if (!split) std::memset(pad, 0, ph * pw * sizeof(float));  // borders, shared by all planes
    for (int64_t plane = begin; plane < end; ++plane) {
      const int64_t ch = plane % c;
      PadPlane(x + plane * ih * iw, g, ph, pw, half, pad);
      const float* wk = w + ch * kh * kw;
      const float b = bias ? bias[ch] : 0.0f;
      float* yp = y + plane * oh * ow;
      for (int64_t r = 0; r < oh; ++r) {
        float* out = yp + r * ow;
        const float* rows = pad + r * sh * pw;
        // Address of tap (a, e) for output column j: contiguous in j when sw is 1 or 2.
        auto tap = [&](int64_t a, int64_t e, int64_t j) {
          const float* row = rows + a * dh * pw;
          const int64_t col = e * dw;
          return split ? row + (col & 1) * half + (col >> 1) + j : row + col + j;
        };
        int64_t j0 = 0;
#if defined(__AVX512F__)
        if (sw <= 2) {
          const __m512 vb = _mm512_set1_ps(b), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
          for (; j0 < ow; j0 += kLanes) {
            const int64_t lanes = std::min(kLanes, ow - j0);
            const __mmask16 mask = static_cast<__mmask16>((1u << lanes) - 1);
            __m512 acc = vb;
            for (int64_t a = 0; a < kh; ++a) {
              for (int64_t e = 0; e < kw; ++e) {
                const __m512 wv = _mm512_set1_ps(wk[a * kw + e]);
                const float* src = tap(a, e, j0);
                const __m512 v = lanes == kLanes ? _mm512_loadu_ps(src)
                                                 : _mm512_maskz_loadu_ps(mask, src);
                acc = _mm512_fmadd_ps(wv, v, acc);
              }
            }
            if (clamp) acc = _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc));
            _mm512_mask_storeu_ps(out + j0, mask, acc);
          }
        }
#endif
        for (int64_t j = j0; j < ow; ++j) {
          float acc = b;
          for (int64_t a = 0; a < kh; ++a) {
            for (int64_t e = 0; e < kw; ++e) {
              acc += wk[a * kw + e] *
                     (sw <= 2 ? *tap(a, e, j) : rows[a * dh * pw + e * dw + j * sw]);
            }
          }
          out[j] = clamp ? std::min(hi, std::max(lo, acc)) : acc;
        }
      }
    }
  });
}

}  // namespace inferd::models::cpu
