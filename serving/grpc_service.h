// The gRPC adapter: tensorflow.serving.PredictionService and ModelService on the callback API,
// (grpc.health.v1 is common/grpc_health.h). Handlers convert, hand the call to InferenceService and return;
// the batch thread finishes the RPC. This is the one place grpc::Status is built.
#ifndef INFERD_SERVING_GRPC_SERVICE_H_
#define INFERD_SERVING_GRPC_SERVICE_H_

#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/health.h"
#include "serving/inference_service.h"
#include "tensorflow_serving/apis/model_service.grpc.pb.h"
#include "tensorflow_serving/apis/prediction_service.grpc.pb.h"

namespace inferd::serving {

grpc::Status ToGrpcStatus(const absl::Status& status);

// Predict, GetModelMetadata and ModelService's methods are registered raw (bytes in, bytes out)
// and parse their requests themselves: gRPC's callback API answers a request that does not
// parse with UNIMPLEMENTED and no message, where a client needs INVALID_ARGUMENT saying so.
// Predict's request and response live on a protobuf arena whose first block is part of the
// call's state, so the parsed TensorProtos, their maps and strings and the answer's are carved
// from it and freed at once, instead of a few dozen mallocs and frees per call.
class PredictionServiceImpl final
    : public tensorflow::serving::PredictionService::WithRawCallbackMethod_GetModelMetadata<
          tensorflow::serving::PredictionService::WithRawCallbackMethod_Predict<
              tensorflow::serving::PredictionService::CallbackService>> {
 public:
  PredictionServiceImpl(InferenceService* service, bool tensor_content_output)
      : service_(service), tensor_content_output_(tensor_content_output) {}

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetModelMetadata(grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const tensorflow::serving::ClassificationRequest* request,
                                     tensorflow::serving::ClassificationResponse* response) override;
  grpc::ServerUnaryReactor* Regress(grpc::CallbackServerContext* context,
                                    const tensorflow::serving::RegressionRequest* request,
                                    tensorflow::serving::RegressionResponse* response) override;
  grpc::ServerUnaryReactor* MultiInference(
      grpc::CallbackServerContext* context,
      const tensorflow::serving::MultiInferenceRequest* request,
      tensorflow::serving::MultiInferenceResponse* response) override;

 private:
  InferenceService* const service_;
  const bool tensor_content_output_;
};

class ModelServiceImpl final
    : public tensorflow::serving::ModelService::WithRawCallbackMethod_GetModelStatus<
          tensorflow::serving::ModelService::WithRawCallbackMethod_HandleReloadConfigRequest<
              tensorflow::serving::ModelService::CallbackService>> {
 public:
  explicit ModelServiceImpl(InferenceService* service) : service_(service) {}
  // Joins reload threads still running.
  ~ModelServiceImpl() override;

  grpc::ServerUnaryReactor* GetModelStatus(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  // Blocks until the new models are loaded, so it runs on its own thread.
  grpc::ServerUnaryReactor* HandleReloadConfigRequest(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* request,
                                                      grpc::ByteBuffer* response) override;

 private:
  InferenceService* const service_;
  absl::Mutex mu_;
  std::vector<std::thread> reloads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace inferd::serving

#endif  // INFERD_SERVING_GRPC_SERVICE_H_
