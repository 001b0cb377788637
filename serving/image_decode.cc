#include "serving/image_decode.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
#include <png.h>

#include "absl/strings/str_cat.h"

namespace inferd::serving {
namespace {

// A progressive JPEG may hold any number of scans, each a full pass over the coefficients; a
// small file with thousands of tiny scans takes seconds to decode. Real encoders write < 20.
constexpr int kMaxJpegScans = 256;

absl::Status TooManyPixels(ImageFormat format, int64_t width, int64_t height, int64_t limit) {
  return absl::InvalidArgumentError(absl::StrCat(
      ImageFormatName(format), " image is ", width, "x", height, " = ", width * height,
      " pixels, above the limit of ", limit, " pixels"));
}

absl::Status ZeroSize(ImageFormat format, int64_t width, int64_t height) {
  return absl::InvalidArgumentError(
      absl::StrCat(ImageFormatName(format), " image has zero size (", width, "x", height, ")"));
}

// libjpeg reports errors through error_exit, which must not return: it longjmps back to
// DecodeJpeg with the message formatted into `message`. Warnings (corrupt or truncated data,
// after which libjpeg would go on with gray filler) are errors for us too.
struct JpegErrorManager {
  jpeg_error_mgr pub;  // first: libjpeg casts to it
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void JpegErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void JpegEmitMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;  // trace messages
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void JpegProgress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxJpegScans) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "more than %d progressive scans",
                  kMaxJpegScans);
    std::longjmp(err->jump, 1);
  }
}

absl::StatusOr<DecodedImage> DecodeJpeg(std::string_view bytes, const DecodeOptions& options) {
  DecodedImage image;
  image.format = ImageFormat::kJpeg;
  image.channels = options.channels;
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  jpeg_progress_mgr progress;
  std::memset(&err, 0, sizeof(err));
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = JpegErrorExit;
  err.pub.emit_message = JpegEmitMessage;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return absl::InvalidArgumentError(
        absl::StrCat("JPEG data is invalid, corrupt or truncated: ", err.message));
  }
  jpeg_create_decompress(&cinfo);
  progress.progress_monitor = JpegProgress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  const int64_t width = cinfo.image_width, height = cinfo.image_height;
  if (width == 0 || height == 0) {
    jpeg_destroy_decompress(&cinfo);
    return ZeroSize(image.format, width, height);
  }
  if (width * height > options.max_pixels) {
    jpeg_destroy_decompress(&cinfo);
    return TooManyPixels(image.format, width, height, options.max_pixels);
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return absl::InvalidArgumentError("CMYK JPEG images are not supported; send RGB or grayscale");
  }
  cinfo.out_color_space = options.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  cinfo.dct_method = JDCT_ISLOW;
  jpeg_start_decompress(&cinfo);
  image.width = static_cast<int>(cinfo.output_width);
  image.height = static_cast<int>(cinfo.output_height);
  const size_t stride = static_cast<size_t>(image.width) * options.channels;
  image.pixels.resize(stride * image.height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = image.pixels.data() + stride * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return image;
}

absl::StatusOr<DecodedImage> DecodePng(std::string_view bytes, const DecodeOptions& options) {
  DecodedImage image;
  image.format = ImageFormat::kPng;
  image.channels = options.channels;
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    std::string message = png.message;
    png_image_free(&png);
    return absl::InvalidArgumentError(absl::StrCat("PNG data is invalid: ", message));
  }
  const int64_t width = png.width, height = png.height;
  if (width == 0 || height == 0) {
    png_image_free(&png);
    return ZeroSize(image.format, width, height);
  }
  if (width * height > options.max_pixels) {
    png_image_free(&png);
    return TooManyPixels(image.format, width, height, options.max_pixels);
  }
  // 8-bit output; an alpha channel is composed onto black, 16-bit samples are scaled down.
  png.format = options.channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.pixels.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, /*background=*/nullptr, image.pixels.data(),
                             /*row_stride=*/0, /*colormap=*/nullptr)) {
    std::string message = png.message;
    png_image_free(&png);
    return absl::InvalidArgumentError(
        absl::StrCat("PNG data is corrupt or truncated: ", message));
  }
  png_image_free(&png);
  return image;
}

}  // namespace

const char* ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

ImageFormat SniffImageFormat(std::string_view bytes) {
  static constexpr unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xff &&
      static_cast<unsigned char>(bytes[1]) == 0xd8 && static_cast<unsigned char>(bytes[2]) == 0xff) {
    return ImageFormat::kJpeg;
  }
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0) {
    return ImageFormat::kPng;
  }
  return ImageFormat::kUnknown;
}

absl::StatusOr<DecodedImage> DecodeImage(std::string_view bytes, const DecodeOptions& options) {
  if (options.channels != 1 && options.channels != 3) {
    return absl::InternalError("image decoding supports 1 or 3 channels");
  }
  if (bytes.empty()) return absl::InvalidArgumentError("image bytes are empty");
  switch (SniffImageFormat(bytes)) {
    case ImageFormat::kJpeg:
      return DecodeJpeg(bytes, options);
    case ImageFormat::kPng:
      return DecodePng(bytes, options);
    case ImageFormat::kUnknown:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "not a JPEG or PNG image (", bytes.size(),
      " bytes; the first bytes match neither signature)"));
}

}  // namespace inferd::serving
