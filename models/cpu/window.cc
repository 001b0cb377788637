#include "models/cpu/window.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace inferd::models::cpu {

absl::StatusOr<WindowAttrs> ReadWindowAttrs(const AttributeMap& attrs) {
  WindowAttrs w;
  ASSIGN_OR_RETURN(w.kernel_shape, attrs.GetInts("kernel_shape", {}));
  ASSIGN_OR_RETURN(w.strides, attrs.GetInts("strides", {}));
  ASSIGN_OR_RETURN(w.dilations, attrs.GetInts("dilations", {}));
  ASSIGN_OR_RETURN(w.pads, attrs.GetInts("pads", {}));
  ASSIGN_OR_RETURN(w.auto_pad, attrs.GetString("auto_pad", "NOTSET"));
  ASSIGN_OR_RETURN(int64_t ceil_mode, attrs.GetInt("ceil_mode", 0));
  w.ceil_mode = ceil_mode != 0;
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" &&
      w.auto_pad != "VALID") {
    return absl::InvalidArgumentError(absl::StrCat("unknown auto_pad '", w.auto_pad, "'"));
  }
  return w;
}

void WindowGeometry::AppendOutDims(Shape& shape) const {
  for (int d = kMaxSpatial - spatial; d < kMaxSpatial; ++d) shape.push_back(out[d]);
}

absl::StatusOr<WindowGeometry> ComputeWindow(const WindowAttrs& attrs,
                                             absl::Span<const int64_t> in_spatial,
                                             absl::Span<const int64_t> kernel) {
  const int n = static_cast<int>(in_spatial.size());
  if (n < 1 || n > kMaxSpatial) {
    return absl::UnimplementedError(
        absl::StrCat(n, " spatial dimensions are not supported (1 to ", kMaxSpatial, ")"));
  }
  const absl::Span<const int64_t> k =
      attrs.kernel_shape.empty() ? kernel : absl::MakeConstSpan(attrs.kernel_shape);
  auto check_len = [&](absl::Span<const int64_t> v, size_t want, const char* what) {
    if (!v.empty() && v.size() != want) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has ", v.size(), " values; expected ", want));
    }
    return absl::OkStatus();
  };
  if (k.size() != static_cast<size_t>(n)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kernel has ", k.size(), " dimensions but the input has ", n, " spatial dimensions"));
  }
  RETURN_IF_ERROR(check_len(attrs.strides, n, "strides"));
  RETURN_IF_ERROR(check_len(attrs.dilations, n, "dilations"));
  RETURN_IF_ERROR(check_len(attrs.pads, 2 * n, "pads"));

  WindowGeometry g;
  g.spatial = n;
  const int off = kMaxSpatial - n;
  for (int i = 0; i < n; ++i) {
    const int d = off + i;
    g.in[d] = in_spatial[i];
    g.kernel[d] = k[i];
    g.stride[d] = attrs.strides.empty() ? 1 : attrs.strides[i];
    g.dilation[d] = attrs.dilations.empty() ? 1 : attrs.dilations[i];
    if (g.kernel[d] < 1 || g.stride[d] < 1 || g.dilation[d] < 1 || g.in[d] < 0) {
      return absl::InvalidArgumentError("kernel, strides and dilations must be positive");
    }
    const int64_t extent = g.dilation[d] * (g.kernel[d] - 1) + 1;
    if (attrs.auto_pad == "SAME_UPPER" || attrs.auto_pad == "SAME_LOWER") {
      g.out[d] = (g.in[d] + g.stride[d] - 1) / g.stride[d];
      const int64_t total = std::max<int64_t>(0, (g.out[d] - 1) * g.stride[d] + extent - g.in[d]);
      const int64_t small = total / 2;
      g.pad_begin[d] = attrs.auto_pad == "SAME_UPPER" ? small : total - small;
      g.pad_end[d] = total - g.pad_begin[d];
      continue;
    }
    if (attrs.auto_pad == "NOTSET" && !attrs.pads.empty()) {
      g.pad_begin[d] = attrs.pads[i];
      g.pad_end[d] = attrs.pads[n + i];
      if (g.pad_begin[d] < 0 || g.pad_end[d] < 0) {
        return absl::InvalidArgumentError("pads must not be negative");
      }
    }
    const int64_t span = g.in[d] + g.pad_begin[d] + g.pad_end[d] - extent;
    if (span < 0) {
      return absl::InvalidArgumentError(absl::StrCat("the window (extent ", extent,
                                                     ") is larger than the padded input (",
                                                     g.in[d] + g.pad_begin[d] + g.pad_end[d], ")"));
    }
    if (attrs.ceil_mode) {
      g.out[d] = (span + g.stride[d] - 1) / g.stride[d] + 1;
      // The last window must start inside the input or its leading padding.
      if ((g.out[d] - 1) * g.stride[d] >= g.in[d] + g.pad_begin[d]) --g.out[d];
    } else {
      g.out[d] = span / g.stride[d] + 1;
    }
  }
  return g;
}

void SplitPaddedRow(const float* src, int64_t iw, int64_t left, int64_t half, float* even,
                    float* odd) {
  for (int parity = 0; parity < 2; ++parity) {
    float* out = parity ? odd : even;
    // out[i] is padded column 2i + parity, i.e. source column 2i + parity - left.
    const int64_t first = std::clamp<int64_t>((left - parity + 1) / 2, 0, half);
    const int64_t last = std::clamp<int64_t>((left + iw - parity + 1) / 2, first, half);
    std::fill(out, out + first, 0.0f);
    const float* in = src + parity - left;
    for (int64_t i = first; i < last; ++i) out[i] = in[2 * i];
    std::fill(out + last, out + half, 0.0f);
  }
}

}  // namespace inferd::models::cpu
