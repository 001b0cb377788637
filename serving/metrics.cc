#include "serving/metrics.h"

#include <cmath>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/series_cache.h"
#include "prometheus/text_serializer.h"
#include "tensorflow/core/protobuf/error_codes.pb.h"

namespace inferd::serving {
namespace {
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// Bucket boundaries are built once: Family::Add takes them on every call.
// TF Serving's latency buckets: 10 us x 1.8^i, 33 buckets.
const Histogram::BucketBoundaries& TfLatencyBuckets() {
  static const Histogram::BucketBoundaries* b = [] {
    auto* out = new Histogram::BucketBoundaries;
    double v = 10;
    for (int i = 0; i < 33; ++i, v *= 1.8) out->push_back(v);
    return out;
  }();
  return *b;
}
const Histogram::BucketBoundaries& PowersOfTwo(int n) {
  static const Histogram::BucketBoundaries* b15 = [] {
    auto* out = new Histogram::BucketBoundaries;
    for (int i = 0; i < 15; ++i) out->push_back(std::ldexp(1.0, i));
    return out;
  }();
  static const Histogram::BucketBoundaries* b12 = new Histogram::BucketBoundaries(
      b15->begin(), b15->begin() + 12);
  return n == 15 ? *b15 : *b12;
}
const Histogram::BucketBoundaries& SecondsBuckets() {
  static const Histogram::BucketBoundaries* b = new Histogram::BucketBoundaries{
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30};
  return *b;
}

double Micros(absl::Duration d) { return absl::ToDoubleMicroseconds(d); }
std::string CodeName(const absl::Status& s) {
  return tensorflow::error::Code_Name(static_cast<tensorflow::error::Code>(s.code()));
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      tf_request_count_(BuildCounter()
                            .Name(":tensorflow:serving:request_count")
                            .Help("The total number of requests.")
                            .Register(*registry_)),
      tf_request_latency_(BuildHistogram()
                              .Name(":tensorflow:serving:request_latency")
                              .Help("Distribution of wall time (in microseconds) for requests.")
                              .Register(*registry_)),
      tf_runtime_latency_(BuildHistogram()
                              .Name(":tensorflow:serving:runtime_latency")
                              .Help("Distribution of wall time (in microseconds) for model runs.")
                              .Register(*registry_)),
      tf_example_counts_(BuildHistogram()
                             .Name(":tensorflow:serving:request_example_counts")
                             .Help("The number of examples (batch rows) per request.")
                             .Register(*registry_)),
      tf_example_count_total_(BuildCounter()
                                  .Name(":tensorflow:serving:request_example_count_total")
                                  .Help("The total number of examples processed.")
                                  .Register(*registry_)),
      tf_load_attempts_(BuildCounter()
                            .Name(":tensorflow:cc:saved_model:load_attempt_count")
                            .Help("The number of model version loads, by status.")
                            .Register(*registry_)),
      tf_load_latency_(BuildCounter()
                           .Name(":tensorflow:cc:saved_model:load_latency")
                           .Help("Total time spent loading model versions, in microseconds.")
                           .Register(*registry_)),
      tf_warmup_latency_(BuildHistogram()
                             .Name(":tensorflow:serving:model_warmup_latency")
                             .Help("Distribution of wall time (in microseconds) for warmup.")
                             .Register(*registry_)),
      tf_warmup_records_(BuildCounter()
                             .Name(":tensorflow:serving:model_warmup_records_read")
                             .Help("The number of warmup records read.")
                             .Register(*registry_)),
      tf_queuing_latency_(BuildHistogram()
                              .Name(":tensorflow:serving:batching_session:queuing_latency")
                              .Help("Time (in microseconds) batches wait in their queue.")
                              .Register(*registry_)),
      tf_input_batch_size_(BuildHistogram()
                               .Name(":tensorflow:serving:batching_session:input_batch_size")
                               .Help("Rows of real requests per batch.")
                               .Register(*registry_)),
      tf_processed_batch_size_(
          BuildHistogram()
              .Name(":tensorflow:serving:batching_session:processed_batch_size")
              .Help("Rows per batch run, padding included.")
              .Register(*registry_)),
      tf_padding_size_(BuildHistogram()
                           .Name(":tensorflow:serving:batching_session:padding_size")
                           .Help("Rows of padding per batch.")
                           .Register(*registry_)),
      request_latency_(BuildHistogram()
                           .Name("inferd_request_latency_seconds")
                           .Help("Request latency by model, version, API and status.")
                           .Register(*registry_)),
      queue_depth_(BuildGauge()
                       .Name("inferd_batch_queue_depth")
                       .Help("Requests waiting in a model version's batch queue.")
                       .Register(*registry_)),
      batch_size_(BuildHistogram()
                      .Name("inferd_batch_size")
                      .Help("Rows of real requests per executed batch.")
                      .Register(*registry_)),
      version_state_(BuildGauge()
                         .Name("inferd_model_version_state")
                         .Help("1 for the current state of each model version.")
                         .Register(*registry_)),
      inflight_(BuildGauge()
                    .Name("inferd_inflight_requests")
                    .Help("Predict requests accepted and not yet answered.")
                    .Register(*registry_)),
      image_preprocess_latency_(
          BuildHistogram()
              .Name("inferd_image_preprocess_seconds")
              .Help("Time to decode and preprocess the encoded images of one request, by model.")
              .Register(*registry_)),
      images_(BuildCounter()
                  .Name("inferd_images_total")
                  .Help("Encoded images received, by model and outcome (ok or the error code).")
                  .Register(*registry_)),
      inflight_gauge_(inflight_.Add({})) {}

Metrics::RequestSeries Metrics::RequestSeriesFor(const std::string& model, int64_t version,
                                                 const std::string& api,
                                                 const std::string& entrypoint,
                                                 const absl::Status& status) {
  return CachedSeries(cache_mu_, request_series_,
                absl::StrCat(model, "\x1f", version, "\x1f", api, "\x1f", entrypoint, "\x1f",
                             static_cast<int>(status.code())),
                [&] {
                  const std::string code = CodeName(status);
                  RequestSeries series;
                  series.count = &tf_request_count_.Add({{"model_name", model}, {"status", code}});
                  series.tf_latency = &tf_request_latency_.Add(
                      {{"model_name", model}, {"API", api}, {"entrypoint", entrypoint}},
                      TfLatencyBuckets());
                  series.latency = &request_latency_.Add(
                      {{"model", model},
                       {"version", version > 0 ? absl::StrCat(version) : ""},
                       {"api", api},
                       {"entrypoint", entrypoint},
                       {"status", code}},
                      SecondsBuckets());
                  series.example_counts =
                      &tf_example_counts_.Add({{"model", model}}, PowersOfTwo(15));
                  series.example_total = &tf_example_count_total_.Add({{"model", model}});
                  return series;
                });
}

void Metrics::RecordRequest(const std::string& model, int64_t version, const std::string& api,
                            const std::string& entrypoint, const absl::Status& status,
                            absl::Duration latency, int64_t examples) {
  const RequestSeries series = RequestSeriesFor(model, version, api, entrypoint, status);
  series.count->Increment();
  series.tf_latency->Observe(Micros(latency));
  series.latency->Observe(absl::ToDoubleSeconds(latency));
  if (status.ok() && examples > 0) {
    series.example_counts->Observe(examples);
    series.example_total->Increment(examples);
  }
}

void Metrics::RecordRuntime(const std::string& model, absl::Duration latency) {
  CachedSeries(cache_mu_, runtime_series_, model, [&] {
    return &tf_runtime_latency_.Add(
        {{"model_name", model}, {"API", "Predict"}, {"runtime", "inferd"}}, TfLatencyBuckets());
  })->Observe(Micros(latency));
}

void Metrics::RecordImagePreprocess(const std::string& model, const absl::Status& status,
                                    absl::Duration latency, int64_t images) {
  image_preprocess_latency_.Add({{"model", model}}, SecondsBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
  images_.Add({{"model", model}, {"status", status.ok() ? "OK" : CodeName(status)}})
      .Increment(images);
}

void Metrics::RecordBatch(const std::string& model, int64_t batch_size, int64_t padding,
                          absl::Duration queue_wait) {
  const BatchSeries series = CachedSeries(cache_mu_, batch_series_, model, [&] {
    BatchSeries s;
    s.queuing_latency = &tf_queuing_latency_.Add({{"model_name", model}}, TfLatencyBuckets());
    s.input_size = &tf_input_batch_size_.Add({{"model_name", model}}, PowersOfTwo(12));
    s.processed_size = &tf_processed_batch_size_.Add({{"model_name", model}}, PowersOfTwo(12));
    s.padding = &tf_padding_size_.Add({{"model_name", model}}, PowersOfTwo(12));
    s.size = &batch_size_.Add({{"model", model}}, PowersOfTwo(12));
    return s;
  });
  series.queuing_latency->Observe(Micros(queue_wait));
  series.input_size->Observe(batch_size);
  series.processed_size->Observe(batch_size + padding);
  series.padding->Observe(padding);
  series.size->Observe(batch_size);
}

prometheus::Gauge* Metrics::QueueDepthGauge(const std::string& model, int64_t version) {
  return &queue_depth_.Add({{"model", model}, {"version", absl::StrCat(version)}});
}

void Metrics::RecordLoad(const std::string& model_path, const absl::Status& status,
                         absl::Duration latency) {
  tf_load_attempts_.Add({{"model_path", model_path}, {"status", status.ok() ? "success" : "fail"}})
      .Increment();
  tf_load_latency_.Add({{"model_path", model_path}}).Increment(Micros(latency));
}

void Metrics::RecordWarmup(const std::string& model_path, const absl::Status& status,
                           absl::Duration latency, int64_t records) {
  tf_warmup_latency_.Add({{"model_path", model_path}, {"status", CodeName(status)}},
                         TfLatencyBuckets())
      .Observe(Micros(latency));
  tf_warmup_records_.Add({}).Increment(records);
}

void Metrics::SetVersionState(const std::string& model, int64_t version,
                              const std::string& state) {
  for (const char* s : {"START", "LOADING", "AVAILABLE", "UNLOADING", "END"}) {
    version_state_.Add({{"model", model}, {"version", absl::StrCat(version)}, {"state", s}})
        .Set(state == s ? 1 : 0);
  }
}

void Metrics::SetInflight(int64_t n) { inflight_gauge_.Set(n); }

std::string Metrics::Serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace inferd::serving
