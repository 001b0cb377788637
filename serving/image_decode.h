// Decoding of encoded images (JPEG with libjpeg-turbo, PNG with libpng) into 8-bit pixels, for
// models that declare image preprocessing (serving/pipeline.h). The bytes come from clients, so
// every failure is an INVALID_ARGUMENT naming what is wrong: not an image, truncated or corrupt
// data, a zero-size image, or more pixels than the limit (checked from the header, before any
// pixel memory is allocated, so a small file that claims a huge image costs nothing).
// Stateless and thread-safe.
#ifndef INFERD_SERVING_IMAGE_DECODE_H_
#define INFERD_SERVING_IMAGE_DECODE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace inferd::serving {

enum class ImageFormat { kUnknown, kJpeg, kPng };

// "JPEG", "PNG", "unknown".
const char* ImageFormatName(ImageFormat format);
// From the leading signature bytes.
ImageFormat SniffImageFormat(std::string_view bytes);

// Row-major, interleaved 8-bit pixels: height rows of width * channels bytes.
struct DecodedImage {
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 (gray) or 3 (RGB)
  ImageFormat format = ImageFormat::kUnknown;
  std::vector<uint8_t> pixels;
};

struct DecodeOptions {
  int channels = 3;                  // output channels: 3 converts to RGB, 1 to grayscale
  int64_t max_pixels = 50'000'000;   // width * height above this is refused
};

absl::StatusOr<DecodedImage> DecodeImage(std::string_view bytes, const DecodeOptions& options);

}  // namespace inferd::serving

#endif  // INFERD_SERVING_IMAGE_DECODE_H_
