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
#if defined(__AVX512F__)
        if (sw <= 2) {
          const __m512 vb = _mm512_set1_ps(b), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
          // Stride 2: columns 2j + col of 16 outputs come from 32 consecutive floats.
          const __m512i even =
              _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
          for (; j0 < ow; j0 += kLanes) {
            const int64_t lanes = std::min(kLanes, ow - j0);
            const __mmask16 mask = static_cast<__mmask16>((1u << lanes) - 1);
            __m512 acc = vb;
            for (int64_t a = 0; a < kh; ++a) {
              const float* row = rows + a * dh * pw;
              for (int64_t e = 0; e < kw; ++e) {
                const __m512 wv = _mm512_set1_ps(wk[a * kw + e]);
                __m512 v;
                if (sw == 1) {
                  const float* src = row + e * dw + j0;
                  v = lanes == kLanes ? _mm512_loadu_ps(src) : _mm512_maskz_loadu_ps(mask, src);
                } else {
                  const float* src = row + e * dw + 2 * j0;
                  v = _mm512_permutex2var_ps(_mm512_loadu_ps(src), even,
                                             _mm512_loadu_ps(src + kLanes));
                }
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
