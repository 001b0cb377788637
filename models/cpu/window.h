// Sliding-window geometry shared by Conv and the pooling ops: kernel, strides, dilations,
// explicit or automatic pads, ceil mode. Up to three spatial dimensions, stored right-aligned
// in arrays of three (unused leading dimensions have size 1).
#ifndef INFERD_MODELS_CPU_WINDOW_H_
#define INFERD_MODELS_CPU_WINDOW_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "models/graph.h"

namespace inferd::models::cpu {

inline constexpr int kMaxSpatial = 3;

struct WindowAttrs {
  std::vector<int64_t> kernel_shape;  // empty: take from the weights (Conv)
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pads;  // begin..., end...
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;
};

absl::StatusOr<WindowAttrs> ReadWindowAttrs(const AttributeMap& attrs);

struct WindowGeometry {
  int spatial = 0;  // number of real spatial dims
  int64_t in[kMaxSpatial] = {1, 1, 1};
  int64_t out[kMaxSpatial] = {1, 1, 1};
  int64_t kernel[kMaxSpatial] = {1, 1, 1};
  int64_t stride[kMaxSpatial] = {1, 1, 1};
  int64_t dilation[kMaxSpatial] = {1, 1, 1};
  int64_t pad_begin[kMaxSpatial] = {0, 0, 0};
  int64_t pad_end[kMaxSpatial] = {0, 0, 0};

  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
  // Output spatial dims (only the real ones), appended to `shape`.
  void AppendOutDims(Shape& shape) const;
};

// `in_spatial`: the input's spatial dims; `kernel`: kernel dims when attrs have none.
absl::StatusOr<WindowGeometry> ComputeWindow(const WindowAttrs& attrs,
                                             absl::Span<const int64_t> in_spatial,
                                             absl::Span<const int64_t> kernel);

// One input row padded by `left` zeros on the left (and zeros past its end), split by column
// parity: even[i] = padded[2i], odd[i] = padded[2i + 1] for i < half, where padded[j] is
// src[j - left] inside [left, left + iw) and 0 elsewhere. Stride-2 windows then read
// contiguously.
void SplitPaddedRow(const float* src, int64_t iw, int64_t left, int64_t half, float* even,
                    float* odd);

}  // namespace inferd::models::cpu

#endif  // INFERD_MODELS_CPU_WINDOW_H_
