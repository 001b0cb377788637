// Image decoding (JPEG, PNG) and the inferd.json pipeline: decoding against known pixels,
// malformed and hostile images (truncated, mutated, zero-size, decompression bombs), config
// parsing with malformed input, resizing/normalisation against hand-computed values, top-k.
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "serving/image_decode.h"
#include "serving/pipeline.h"
#include "tests/testing/model_builder.h"

namespace inferd::serving {
namespace {

using ::testing::HasSubstr;
using models::DType;

std::string ReadFixture(const std::string& name) {
  std::ifstream in(std::string(INFERD_TESTDATA_DIR) + "/" + name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_TRUE(in.good() || in.eof()) << name;
  return s.str();
}

// The gradient make_images.py draws.
int Gradient(int x, int y, int c, int w, int h) {
  if (c == 0) return x * 255 / (w - 1);
  if (c == 1) return y * 255 / (h - 1);
  return (x + y) * 255 / (w + h - 2);
}

uint32_t Crc32(const std::string& bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void PutBig32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
}

// A PNG whose IHDR claims width x height (CRC fixed up), the rest of the file unchanged.
std::string PngWithSize(uint32_t width, uint32_t height) {
  std::string png = ReadFixture("rgb_20x14.png");
  // Signature (8), IHDR length (4), "IHDR" (4), width, height, ...; CRC after 13 data bytes.
  PutBig32(png, 16, width);
  PutBig32(png, 20, height);
  PutBig32(png, 29, Crc32(png.substr(12, 17)));
  return png;
}

// A JPEG whose SOF0 frame header claims width x height.
std::string JpegWithSize(uint16_t width, uint16_t height) {
  std::string jpg = ReadFixture("rgb_20x14.jpg");
  for (size_t i = 2; i + 9 < jpg.size(); ++i) {
    if (static_cast<unsigned char>(jpg[i]) == 0xff && static_cast<unsigned char>(jpg[i + 1]) == 0xc0) {
      jpg[i + 5] = static_cast<char>(height >> 8);
      jpg[i + 6] = static_cast<char>(height & 0xff);
      jpg[i + 7] = static_cast<char>(width >> 8);
      jpg[i + 8] = static_cast<char>(width & 0xff);
      return jpg;
    }
  }
  ADD_FAILURE() << "no SOF0 marker";
  return jpg;
}

TEST(ImageDecodeTest, PngPixelsAreExact) {
  auto image = DecodeImage(ReadFixture("rgb_20x14.png"), {});
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->format, ImageFormat::kPng);
  ASSERT_EQ(image->width, 20);
  ASSERT_EQ(image->height, 14);
  ASSERT_EQ(image->channels, 3);
  for (int y = 0; y < 14; ++y) {
    for (int x = 0; x < 20; ++x) {
      for (int c = 0; c < 3; ++c) {
        ASSERT_EQ(image->pixels[(y * 20 + x) * 3 + c], Gradient(x, y, c, 20, 14)) << x << "," << y;
      }
    }
  }
}

TEST(ImageDecodeTest, JpegPixelsAreClose) {
  auto image = DecodeImage(ReadFixture("rgb_20x14.jpg"), {});
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->format, ImageFormat::kJpeg);
  ASSERT_EQ(image->width, 20);
  ASSERT_EQ(image->height, 14);
  int worst = 0;
  for (int y = 0; y < 14; ++y) {
    for (int x = 0; x < 20; ++x) {
      for (int c = 0; c < 3; ++c) {
        worst = std::max(worst, std::abs(image->pixels[(y * 20 + x) * 3 + c] - Gradient(x, y, c, 20, 14)));
      }
    }
  }
  EXPECT_LE(worst, 24);  // lossy at quality 95, chroma subsampled
}

TEST(ImageDecodeTest, GrayscaleAndColourConversions) {
  auto gray_as_rgb = DecodeImage(ReadFixture("gray_11x8.jpg"), {});
  ASSERT_TRUE(gray_as_rgb.ok()) << gray_as_rgb.status();
  ASSERT_EQ(gray_as_rgb->channels, 3);
  for (size_t i = 0; i < gray_as_rgb->pixels.size(); i += 3) {
    EXPECT_EQ(gray_as_rgb->pixels[i], gray_as_rgb->pixels[i + 1]);
    EXPECT_EQ(gray_as_rgb->pixels[i], gray_as_rgb->pixels[i + 2]);
  }
  DecodeOptions gray;
  gray.channels = 1;
  auto rgb_as_gray = DecodeImage(ReadFixture("rgb_20x14.png"), gray);
  ASSERT_TRUE(rgb_as_gray.ok()) << rgb_as_gray.status();
  EXPECT_EQ(rgb_as_gray->pixels.size(), 20u * 14u);

  // 16-bit samples come out as 8 bits; alpha is composed onto black.
  auto sixteen = DecodeImage(ReadFixture("gray16_6x5.png"), gray);
  ASSERT_TRUE(sixteen.ok()) << sixteen.status();
  ASSERT_EQ(sixteen->pixels.size(), 30u);
  EXPECT_EQ(sixteen->pixels[0], 0);
  EXPECT_GT(sixteen->pixels[29], 150);
  auto rgba = DecodeImage(ReadFixture("rgba_9x7.png"), {});
  ASSERT_TRUE(rgba.ok()) << rgba.status();
  EXPECT_EQ(rgba->pixels[0], 0);  // alpha 0 at (0,0)

  auto progressive = DecodeImage(ReadFixture("progressive.jpg"), {});
  ASSERT_TRUE(progressive.ok()) << progressive.status();
  EXPECT_EQ(progressive->width, 32);
}

TEST(ImageDecodeTest, RefusesWhatIsNotAnImage) {
  for (const std::string& bytes : {std::string(), std::string("hello"), std::string(1000, '\0'),
                                   std::string("\xff\xd8", 2), std::string("\x89PNG", 4)}) {
    auto image = DecodeImage(bytes, {});
    ASSERT_FALSE(image.ok());
    EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << image.status();
  }
  EXPECT_THAT(DecodeImage("hello", {}).status().message(), HasSubstr("not a JPEG or PNG"));
  EXPECT_THAT(DecodeImage("", {}).status().message(), HasSubstr("empty"));
  auto cmyk = DecodeImage(ReadFixture("cmyk.jpg"), {});
  ASSERT_FALSE(cmyk.ok());
  EXPECT_THAT(cmyk.status().message(), HasSubstr("CMYK"));
}

TEST(ImageDecodeTest, EveryTruncationIsAnError) {
  for (const char* name : {"rgb_20x14.jpg", "rgb_20x14.png", "progressive.jpg"}) {
    const std::string full = ReadFixture(name);
    // A PNG may lose its 12-byte IEND chunk, a JPEG its 2-byte EOI marker, and still be whole.
    const size_t tail = std::string(name).find(".png") != std::string::npos ? 12 : 2;
    for (size_t n = 0; n + tail < full.size(); ++n) {
      auto image = DecodeImage(full.substr(0, n), {});
      ASSERT_FALSE(image.ok()) << name << " cut to " << n << " bytes decoded";
      ASSERT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_THAT(DecodeImage(ReadFixture("rgb_20x14.jpg").substr(0, 400), {}).status().message(),
              HasSubstr("JPEG data is invalid, corrupt or truncated"));
}

TEST(ImageDecodeTest, RandomMutationsNeverCrash) {
  std::mt19937 rng(7);
  int ok = 0, refused = 0;
  for (const char* name : {"rgb_20x14.jpg", "rgb_20x14.png", "progressive.jpg", "rgba_9x7.png"}) {
    const std::string full = ReadFixture(name);
    for (int round = 0; round < 400; ++round) {
      std::string bytes = full;
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
      DecodeOptions options;
      options.max_pixels = 1 << 20;
      auto image = DecodeImage(bytes, options);
      if (image.ok()) {
        ++ok;
        EXPECT_EQ(image->pixels.size(),
                  static_cast<size_t>(image->width) * image->height * image->channels);
      } else {
        ++refused;
        EXPECT_EQ(image.status().code(), absl::StatusCode::kInvalidArgument) << image.status();
      }
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(ok + refused, 1600);
}

TEST(ImageDecodeTest, DecompressionBombsAreRefusedFromTheHeader) {
  DecodeOptions options;
  options.max_pixels = 1'000'000;
  auto png = DecodeImage(PngWithSize(100000, 100000), options);
  ASSERT_FALSE(png.ok());
  EXPECT_THAT(png.status().message(),
              HasSubstr("PNG image is 100000x100000 = 10000000000 pixels, above the limit of "
                        "1000000 pixels"));
  auto jpg = DecodeImage(JpegWithSize(60000, 60000), options);
  ASSERT_FALSE(jpg.ok());
  EXPECT_THAT(jpg.status().message(), HasSubstr("JPEG image is 60000x60000"));
  // Within the limit the forged header decodes as far as the data goes, then fails cleanly.
  auto forged = DecodeImage(JpegWithSize(900, 900), options);
  EXPECT_FALSE(forged.ok());
}

TEST(ImageDecodeTest, ZeroSizeImagesAreRefused) {
  auto png = DecodeImage(PngWithSize(0, 14), {});
  ASSERT_FALSE(png.ok());
  EXPECT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument);
  auto jpg = DecodeImage(JpegWithSize(20, 0), {});
  ASSERT_FALSE(jpg.ok());
  EXPECT_EQ(jpg.status().code(), absl::StatusCode::kInvalidArgument);
}

// ---- inferd.json -------------------------------------------------------------------------

TensorSpec Spec(const std::string& name, DType dtype, models::Shape shape) {
  TensorSpec s;
  s.name = name;
  s.dtype = dtype;
  s.shape = std::move(shape);
  return s;
}

Signature ImageModel(int64_t classes = 10) {
  Signature sig;
  sig.inputs.push_back(Spec("image", DType::kFloat32, {-1, 3, 4, 6}));
  sig.outputs.push_back(Spec("logits", DType::kFloat32, {-1, classes}));
  return sig;
}

constexpr char kGoodConfig[] = R"({
  "inputs": {"image": {"image": {"height": 4, "width": 6, "mean": [0.5, 0.5, 0.5], "std": 0.5}}},
  "outputs": {"logits": {"top_k": 3, "softmax": true}}
})";

TEST(PipelineTest, ServedSignatureReplacesImageInputsAndTopKOutputs) {
  auto p = ModelPipeline::Parse(kGoodConfig, ".", ImageModel());
  ASSERT_TRUE(p.ok()) << p.status();
  const Signature& sig = (*p)->signature();
  ASSERT_EQ(sig.inputs.size(), 1u);
  EXPECT_EQ(sig.inputs[0].name, "image");
  EXPECT_EQ(sig.inputs[0].dtype, DType::kString);
  EXPECT_EQ(sig.inputs[0].shape, (models::Shape{-1}));
  ASSERT_EQ(sig.outputs.size(), 2u);
  EXPECT_EQ(sig.outputs[0].name, "classes");
  EXPECT_EQ(sig.outputs[0].dtype, DType::kInt64);
  EXPECT_EQ(sig.outputs[0].shape, (models::Shape{-1, 3}));
  EXPECT_EQ(sig.outputs[1].name, "scores");
  const ImageInputSpec* spec = (*p)->image_input(0);
  ASSERT_NE(spec, nullptr);
  EXPECT_FLOAT_EQ(spec->std[2], 0.5f);
  EXPECT_FLOAT_EQ(spec->scale, 1.0f / 255.0f);
}

TEST(PipelineTest, MalformedConfigsNameWhatIsWrong) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"", "not valid JSON"},
      {"{\"inputs\": ", "not valid JSON"},
      {"[]", "must be an object"},
      {"{\"input\": {}}", "unknown key \"input\""},
      {"{\"inputs\": []}", "keyed by input name"},
      {"{\"inputs\": {\"img\": {\"image\": {\"height\": 4, \"width\": 6}}}}", "no input of that name"},
      {"{\"inputs\": {\"image\": {\"image\": {\"width\": 6}}}}", "\"height\" is required"},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": 4.5, \"width\": 6}}}}", "must be an integer"},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": -4, \"width\": 6}}}}", "must be in [1, 16384]"},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": 4, \"width\": 6, \"heigth\": 1}}}}",
       "unknown key \"heigth\""},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": 4, \"width\": 6, \"mean\": [1, 2]}}}}",
       "list of 3 numbers"},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": 4, \"width\": 6, \"std\": 0}}}}",
       "\"std\" values must be > 0"},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": 4, \"width\": 6, \"channels\": 2}}}}",
       "1 or 3"},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": 4, \"width\": 6, \"central_crop\": 0}}}}",
       "(0, 1]"},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": 4, \"width\": 6, \"layout\": \"CHW\"}}}}",
       "\"NCHW\" or \"NHWC\""},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": 5, \"width\": 6}}}}",
       "the image spec gives [-1,3,5,6]"},
      {"{\"inputs\": {\"image\": {\"image\": {\"height\": 4, \"width\": 6, \"layout\": \"NHWC\"}}}}",
       "the image spec gives"},
      {"{\"outputs\": {\"logits\": {\"top_k\": 11}}}", "exceeds the 10 classes"},
      {"{\"outputs\": {\"logits\": {}}}", "\"top_k\" is required"},
      {"{\"outputs\": {\"logits\": {\"top_k\": 3, \"softmax\": 1}}}", "true or false"},
      {"{\"outputs\": {\"logits\": {\"top_k\": 3, \"labels\": \"missing.txt\"}}}",
       "cannot read labels file"},
      {"{\"outputs\": {\"probs\": {\"top_k\": 3}}}", "no output of that name"},
  };
  for (const Case& c : cases) {
    auto p = ModelPipeline::Parse(c.json, "/nonexistent", ImageModel());
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(), HasSubstr(c.message)) << c.json;
    EXPECT_THAT(p.status().message(), HasSubstr("inferd.json")) << c.json;
  }
  // The model's input is not an image tensor.
  Signature ints = ImageModel();
  ints.inputs[0].dtype = DType::kInt64;
  EXPECT_THAT(ModelPipeline::Parse(kGoodConfig, ".", ints).status().message(),
              HasSubstr("not float32"));
  Signature rank3 = ImageModel();
  rank3.inputs[0].shape = {-1, 4, 6};
  EXPECT_THAT(ModelPipeline::Parse(kGoodConfig, ".", rank3).status().message(),
              HasSubstr("must be rank 4"));
  // A top-k output whose served names collide with another model output.
  Signature clash = ImageModel();
  clash.outputs.push_back(Spec("scores", DType::kFloat32, {-1, 2}));
  EXPECT_THAT(ModelPipeline::Parse(kGoodConfig, ".", clash).status().message(),
              HasSubstr("would exist twice"));
}

TEST(PipelineTest, LabelsFileMustMatchTheClasses) {
  const auto dir = testing::MakeTempDir("pipeline_labels");
  std::ofstream(dir / "three.txt") << "cat\ndog\r\nbird\n";
  const char* config = "{\"outputs\": {\"logits\": {\"top_k\": 2, \"labels\": \"three.txt\"}}}";
  EXPECT_THAT(ModelPipeline::Parse(config, dir, ImageModel(10)).status().message(),
              HasSubstr("the labels file has 3 lines, the output has 10 classes"));
  auto p = ModelPipeline::Parse(config, dir, ImageModel(3));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ((*p)->signature().outputs.size(), 3u);
  EXPECT_EQ((*p)->signature().outputs[2].name, "labels");

  auto logits = models::Tensor::FromVector<float>({2, 3}, {0.1f, 2.0f, 1.0f, 5.0f, 5.0f, NAN});
  auto out = (*p)->Postprocess({logits});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 3u);
  const int64_t* classes = (*out)[0].tensor.data<int64_t>();
  EXPECT_EQ(classes[0], 1);
  EXPECT_EQ(classes[1], 2);
  EXPECT_EQ(classes[2], 0);  // a tie keeps the lower index first; NaN sorts last
  EXPECT_EQ(classes[3], 1);
  EXPECT_FLOAT_EQ((*out)[1].tensor.data<float>()[0], 2.0f);  // no softmax: raw values
  EXPECT_EQ((*out)[2].strings, (std::vector<std::string>{"dog", "bird", "cat", "dog"}));
  EXPECT_EQ(ModelPipeline::Load(dir, ImageModel(3)).value(), nullptr);  // no inferd.json there
}

TEST(PipelineTest, SoftmaxScoresSumToOneOverAllClasses) {
  auto p = ModelPipeline::Parse(kGoodConfig, ".", ImageModel(4));
  ASSERT_TRUE(p.ok()) << p.status();
  auto logits = models::Tensor::FromVector<float>({1, 4}, {1000.0f, 999.0f, 0.0f, -1000.0f});
  auto out = (*p)->Postprocess({logits});
  ASSERT_TRUE(out.ok()) << out.status();
  const float* scores = (*out)[1].tensor.data<float>();
  const double e = std::exp(-1.0);
  EXPECT_NEAR(scores[0], 1.0 / (1.0 + e), 1e-6);
  EXPECT_NEAR(scores[1], e / (1.0 + e), 1e-6);
  EXPECT_NEAR(scores[2], 0.0, 1e-6);
}

DecodedImage Pixels(int w, int h, int c, std::function<int(int, int, int)> f) {
  DecodedImage image;
  image.width = w;
  image.height = h;
  image.channels = c;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int ch = 0; ch < c; ++ch) image.pixels.push_back(static_cast<uint8_t>(f(x, y, ch)));
  return image;
}

TEST(ResizeTest, SameSizeIsScaleAndNormaliseOnly) {
  ImageInputSpec spec;
  spec.height = 2;
  spec.width = 3;
  spec.channels = 3;
  spec.mean = {0.5f, 0.0f, 1.0f};
  spec.std = {0.5f, 1.0f, 2.0f};
  const DecodedImage image = Pixels(3, 2, 3, [](int x, int y, int c) { return 10 * x + 40 * y + c; });
  std::vector<float> out(18);
  ResizeAndNormalize(image, spec, out.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x) {
        const float pixel = (10 * x + 40 * y + c) / 255.0f;
        EXPECT_NEAR(out[c * 6 + y * 3 + x], (pixel - spec.mean[c]) / spec.std[c], 1e-6);
      }
  spec.nchw = false;
  ResizeAndNormalize(image, spec, out.data());
  EXPECT_NEAR(out[(1 * 3 + 2) * 3 + 1], (10 * 2 + 40 + 1) / 255.0f, 1e-6);
}

// A 2x2 one-channel target that keeps pixel values as they are (no scale, mean or std).
ImageInputSpec RawGray2x2() {
  ImageInputSpec spec;
  spec.height = 2;
  spec.width = 2;
  spec.channels = 1;
  spec.scale = 1.0f;
  spec.mean = {0.0f};
  spec.std = {1.0f};
  return spec;
}

TEST(ResizeTest, HalvingAveragesEachTwoByTwoBlock) {
  ImageInputSpec spec = RawGray2x2();
  const DecodedImage image = Pixels(4, 4, 1, [](int x, int y, int) { return x * 10 + y * 50; });
  std::vector<float> out(4);
  ResizeAndNormalize(image, spec, out.data());
  // Half-pixel centres: output (0,0) samples source (0.5, 0.5), the mean of the top-left block.
  EXPECT_FLOAT_EQ(out[0], (0 + 10 + 50 + 60) / 4.0f);
  EXPECT_FLOAT_EQ(out[3], (120 + 130 + 170 + 180) / 4.0f);
  // Upscaling clamps at the border: a 1x1 image fills the output.
  const DecodedImage dot = Pixels(1, 1, 1, [](int, int, int) { return 200; });
  ResizeAndNormalize(dot, spec, out.data());
  EXPECT_EQ(out, (std::vector<float>{200, 200, 200, 200}));
}

TEST(ResizeTest, CentralCropKeepsTheMiddle) {
  ImageInputSpec spec = RawGray2x2();
  spec.central_crop = 0.5;
  const DecodedImage image = Pixels(4, 4, 1, [](int x, int y, int) { return x + 4 * y; });
  std::vector<float> out(4);
  ResizeAndNormalize(image, spec, out.data());
  EXPECT_EQ(out, (std::vector<float>{5, 6, 9, 10}));
}

TEST(PipelineTest, PreprocessNamesTheBadImageOfABatch) {
  auto p = ModelPipeline::Parse(kGoodConfig, ".", ImageModel());
  ASSERT_TRUE(p.ok()) << p.status();
  const std::string good = ReadFixture("rgb_20x14.png");
  auto batch = (*p)->Preprocess(0, {good, good});
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->shape(), (models::Shape{2, 3, 4, 6}));
  auto bad = (*p)->Preprocess(0, {good, "GIF89a"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("input \"image\", image 1: not a JPEG or PNG"));
}

}  // namespace
}  // namespace inferd::serving
