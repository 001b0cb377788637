// Fuzz target: an encoded image in a request ({"b64": ...} or a DT_STRING value) for a model
// whose inferd.json asks for image decoding: JPEG and PNG through libjpeg-turbo and libpng.
//
// Decodes the bytes to RGB and to grayscale, with a pixel cap of 2^20 so that a small header
// cannot make the decoder allocate gigabytes. Properties: no crash or sanitizer report; a
// decoded image has width * height * channels pixel bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "fuzz/fuzz_check.h"
#include "serving/image_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)inferd::serving::SniffImageFormat(bytes);
  for (int channels : {3, 1}) {
    inferd::serving::DecodeOptions options;
    options.channels = channels;
    options.max_pixels = int64_t{1} << 20;
    absl::StatusOr<inferd::serving::DecodedImage> image =
        inferd::serving::DecodeImage(bytes, options);
    if (!image.ok()) {
      FUZZ_CHECK(!image.status().message().empty());
      continue;
    }
    FUZZ_CHECK(image->channels == channels);
    FUZZ_CHECK(image->width > 0 && image->height > 0);
    FUZZ_CHECK(static_cast<int64_t>(image->width) * image->height <= options.max_pixels);
    FUZZ_CHECK(image->pixels.size() ==
               static_cast<size_t>(image->width) * image->height * image->channels);
  }
  return 0;
}
