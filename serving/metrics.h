// The server's Prometheus metrics (prometheus-cpp), exposed as text on the REST port.
// TF Serving's names are kept so existing dashboards work (":tensorflow:serving:request_count",
// ...); inferd's own metrics are prefixed "inferd_". Thread-safe. The series a request touches
// are looked up in the registry once per label set and cached (series are never removed), so
// recording costs a hash lookup and atomic updates, not label maps built per request.
#ifndef INFERD_SERVING_METRICS_H_
#define INFERD_SERVING_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace inferd::serving {

class Metrics {
 public:
  Metrics();

  // One finished request. `api`: "Predict", "GetModelMetadata", ...; `entrypoint`: "GRPC" or
  // "REST"; `version` 0 when no version was resolved.
  void RecordRequest(const std::string& model, int64_t version, const std::string& api,
                     const std::string& entrypoint, const absl::Status& status,
                     absl::Duration latency, int64_t examples);
  void RecordRuntime(const std::string& model, absl::Duration latency);
  // Decoding and preprocessing the encoded images of one request (on its request thread).
  void RecordImagePreprocess(const std::string& model, const absl::Status& status,
                             absl::Duration latency, int64_t images);
  void RecordBatch(const std::string& model, int64_t batch_size, int64_t padding,
                   absl::Duration queue_wait);
  // The queue-depth gauge of one model version, for its servable to keep and set.
  prometheus::Gauge* QueueDepthGauge(const std::string& model, int64_t version);
  void RecordLoad(const std::string& model_path, const absl::Status& status, absl::Duration latency);
  void RecordWarmup(const std::string& model_path, const absl::Status& status,
                    absl::Duration latency, int64_t records);
  // Exactly one state per (model, version) is 1.
  void SetVersionState(const std::string& model, int64_t version, const std::string& state);
  void SetInflight(int64_t n);

  // Prometheus text exposition format.
  std::string Serialize() const;

 private:
  // The series one kind of finished request updates.
  struct RequestSeries {
    prometheus::Counter* count;
    prometheus::Histogram* tf_latency;
    prometheus::Histogram* latency;
    prometheus::Histogram* example_counts;
    prometheus::Counter* example_total;
  };
  RequestSeries RequestSeriesFor(const std::string& model, int64_t version,
                                 const std::string& api, const std::string& entrypoint,
                                 const absl::Status& status);
  // The series one batch of a model updates.
  struct BatchSeries {
    prometheus::Histogram* queuing_latency;
    prometheus::Histogram* input_size;
    prometheus::Histogram* processed_size;
    prometheus::Histogram* padding;
    prometheus::Histogram* size;
  };

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& tf_request_count_;
  prometheus::Family<prometheus::Histogram>& tf_request_latency_;
  prometheus::Family<prometheus::Histogram>& tf_runtime_latency_;
  prometheus::Family<prometheus::Histogram>& tf_example_counts_;
  prometheus::Family<prometheus::Counter>& tf_example_count_total_;
  prometheus::Family<prometheus::Counter>& tf_load_attempts_;
  prometheus::Family<prometheus::Counter>& tf_load_latency_;
  prometheus::Family<prometheus::Histogram>& tf_warmup_latency_;
  prometheus::Family<prometheus::Counter>& tf_warmup_records_;
  prometheus::Family<prometheus::Histogram>& tf_queuing_latency_;
  prometheus::Family<prometheus::Histogram>& tf_input_batch_size_;
  prometheus::Family<prometheus::Histogram>& tf_processed_batch_size_;
  prometheus::Family<prometheus::Histogram>& tf_padding_size_;
  prometheus::Family<prometheus::Histogram>& request_latency_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Gauge>& version_state_;
  prometheus::Family<prometheus::Gauge>& inflight_;
  prometheus::Family<prometheus::Histogram>& image_preprocess_latency_;
  prometheus::Family<prometheus::Counter>& images_;
  prometheus::Gauge& inflight_gauge_;  // inflight_'s only series

  absl::Mutex cache_mu_;
  absl::flat_hash_map<std::string, RequestSeries> request_series_ ABSL_GUARDED_BY(cache_mu_);
  absl::flat_hash_map<std::string, prometheus::Histogram*> runtime_series_
      ABSL_GUARDED_BY(cache_mu_);
  absl::flat_hash_map<std::string, BatchSeries> batch_series_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace inferd::serving

#endif  // INFERD_SERVING_METRICS_H_
