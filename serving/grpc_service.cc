#include "serving/grpc_service.h"

#include <chrono>
#include <memory>

#include <grpcpp/support/proto_buffer_reader.h>

#include "absl/strings/str_cat.h"
#include "common/json_escape.h"
#include "serving/tensor_proto.h"

namespace inferd::serving {
namespace {

absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  const auto now = std::chrono::system_clock::now();
  if (deadline >= now + std::chrono::hours(24 * 365)) return absl::InfiniteFuture();
  return absl::Now() + absl::FromChrono(deadline - now);
}

// Records the call in the metrics and finishes it with `status`; returns `reactor`.
grpc::ServerUnaryReactor* Reply(InferenceService* service, grpc::ServerUnaryReactor* reactor,
                                const RequestInfo& info, int64_t version,
                                const absl::Status& status, int64_t examples = 0) {
  service->Finish(info, version, status, examples);
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* Unimplemented(grpc::CallbackServerContext* context,
                                        InferenceService* service, const std::string& model,
                                        const char* api) {
  const absl::Status status = absl::UnimplementedError(absl::StrCat(
      api, " is not supported by inferd: it serves ONNX models through predict signatures; "
           "call Predict instead"));
  return Reply(service, context->DefaultReactor(), RequestInfo{model, api, "GRPC"}, 0, status);
}

// One Predict call's messages, on an arena whose first block is part of this object.
class PredictMessages {
 public:
  PredictMessages()
      : arena_(Options(block_)),
        request_(google::protobuf::Arena::CreateMessage<tensorflow::serving::PredictRequest>(
            &arena_)),
        response_(google::protobuf::Arena::CreateMessage<tensorflow::serving::PredictResponse>(
            &arena_)) {}
  tensorflow::serving::PredictRequest* request() { return request_; }
  tensorflow::serving::PredictResponse* response() { return response_; }

 private:
  // A digits-sized call (a 300-byte request, a 100-byte answer) fits in the first block; larger
  // ones take further blocks from the heap.
  static constexpr size_t kFirstBlock = 4096;
  static google::protobuf::ArenaOptions Options(char* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = kFirstBlock;
    return options;
  }

  alignas(16) char block_[kFirstBlock];  // before arena_, which is built on it
  google::protobuf::Arena arena_;
  tensorflow::serving::PredictRequest* const request_;
  tensorflow::serving::PredictResponse* const response_;
};

// Parses `bytes` into `message`; INVALID_ARGUMENT naming the message type when they are not one.
template <typename Message>
absl::Status ParseRaw(const grpc::ByteBuffer& bytes, Message* message) {
  grpc::ByteBuffer view(bytes);  // shares the slices; the reader needs a mutable buffer
  grpc::ProtoBufferReader reader(&view);
  if (reader.status().ok() && message->ParseFromZeroCopyStream(&reader)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the request is not a valid ", Message::descriptor()->full_name(), ": its ", bytes.Length(),
      " bytes do not parse as one (truncated or corrupt protobuf)"));
}

template <typename Message>
absl::Status SerializeRaw(const Message& message, grpc::ByteBuffer* bytes) {
  bool own_buffer = false;
  const grpc::Status s = grpc::SerializationTraits<Message>::Serialize(message, bytes, &own_buffer);
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cannot serialize the answer: ", s.error_message()));
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), ValidUtf8(status.message()));
}

grpc::ServerUnaryReactor* PredictionServiceImpl::Predict(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* request_bytes,
                                                          grpc::ByteBuffer* response_bytes) {
  auto* reactor = context->DefaultReactor();
  // Kept until the answer, built on the same arena, is serialized (the inputs are copies).
  auto messages = std::make_unique<PredictMessages>();
  const tensorflow::serving::PredictRequest* request = messages->request();
  const absl::Status parsed = ParseRaw(*request_bytes, messages->request());
  RequestInfo info{parsed.ok() ? request->model_spec().name() : "", "Predict", "GRPC"};
  auto fail = [&](const absl::Status& status, int64_t version) {
    return Reply(service_, reactor, info, version, status);
  };
  if (!parsed.ok()) return fail(parsed, 0);
  auto handle = service_->Resolve(InferenceService::FromModelSpec(request->model_spec()));
  if (!handle.ok()) return fail(handle.status(), 0);
  PredictCall call;
  call.handle = *handle;
  call.signature_name = request->model_spec().signature_name();
  call.deadline = DeadlineOf(context);
  for (const auto& [alias, proto] : request->inputs()) {
    auto tensor = FromTensorProto(proto, alias);
    if (!tensor.ok()) return fail(tensor.status(), handle->version);
    call.inputs.emplace_back(alias, std::move(*tensor));
  }
  call.output_filter.assign(request->output_filter().begin(), request->output_filter().end());
  const int64_t examples = ExampleCount(call.inputs);
  const std::string signature = request->model_spec().signature_name().empty()
                                    ? kDefaultSignature
                                    : request->model_spec().signature_name();
  service_->Predict(
      std::move(call),
      [this, reactor, response_bytes, info, examples, signature, version = handle->version,
       messages = std::shared_ptr<PredictMessages>(std::move(messages))](
          absl::StatusOr<PredictResult> result) mutable {
        absl::Status status = result.status();
        if (result.ok()) {
          tensorflow::serving::PredictResponse* response = messages->response();
          auto* spec = response->mutable_model_spec();
          spec->set_name(result->model);
          spec->mutable_version()->set_value(result->version);
          spec->set_signature_name(signature);
          for (const auto& [alias, tensor] : result->outputs) {
            ToTensorProto(tensor, tensor_content_output_, &(*response->mutable_outputs())[alias]);
          }
          status = SerializeRaw(*response, response_bytes);
        }
        messages.reset();
        Reply(service_, reactor, info, version, status, examples);
      });
  return reactor;
}

grpc::ServerUnaryReactor* PredictionServiceImpl::GetModelMetadata(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  tensorflow::serving::GetModelMetadataRequest request;
  absl::Status status = ParseRaw(*request_bytes, &request);
  int64_t version = 0;
  if (status.ok()) {
    auto result = service_->GetModelMetadata(request);
    status = result.status();
    if (result.ok()) {
      version = result->model_spec().version().value();
      status = SerializeRaw(*result, response_bytes);
    }
  }
  return Reply(service_, context->DefaultReactor(),
               RequestInfo{request.model_spec().name(), "GetModelMetadata", "GRPC"}, version,
               status);
}

grpc::ServerUnaryReactor* PredictionServiceImpl::Classify(
    grpc::CallbackServerContext* context, const tensorflow::serving::ClassificationRequest* request,
    tensorflow::serving::ClassificationResponse*) {
  return Unimplemented(context, service_, request->model_spec().name(), "Classify");
}

grpc::ServerUnaryReactor* PredictionServiceImpl::Regress(
    grpc::CallbackServerContext* context, const tensorflow::serving::RegressionRequest* request,
    tensorflow::serving::RegressionResponse*) {
  return Unimplemented(context, service_, request->model_spec().name(), "Regress");
}

grpc::ServerUnaryReactor* PredictionServiceImpl::MultiInference(
    grpc::CallbackServerContext* context, const tensorflow::serving::MultiInferenceRequest* request,
    tensorflow::serving::MultiInferenceResponse*) {
  const std::string model =
      request->tasks_size() > 0 ? request->tasks(0).model_spec().name() : std::string();
  return Unimplemented(context, service_, model, "MultiInference");
}

ModelServiceImpl::~ModelServiceImpl() {
  absl::MutexLock lock(&mu_);
  for (std::thread& t : reloads_) t.join();
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetModelStatus(grpc::CallbackServerContext* context,
                                                           const grpc::ByteBuffer* request_bytes,
                                                           grpc::ByteBuffer* response_bytes) {
  tensorflow::serving::GetModelStatusRequest request;
  absl::Status status = ParseRaw(*request_bytes, &request);
  if (status.ok()) {
    auto result = service_->GetModelStatus(request);
    status = result.ok() ? SerializeRaw(*result, response_bytes) : result.status();
  }
  return Reply(service_, context->DefaultReactor(),
               RequestInfo{request.model_spec().name(), "GetModelStatus", "GRPC"}, 0, status);
}

grpc::ServerUnaryReactor* ModelServiceImpl::HandleReloadConfigRequest(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  auto* reactor = context->DefaultReactor();
  const RequestInfo info{"", "HandleReloadConfigRequest", "GRPC"};
  auto request = std::make_shared<tensorflow::serving::ReloadConfigRequest>();
  if (absl::Status parsed = ParseRaw(*request_bytes, request.get()); !parsed.ok()) {
    return Reply(service_, reactor, info, 0, parsed);
  }
  absl::MutexLock lock(&mu_);
  reloads_.emplace_back([this, reactor, request, response_bytes, info] {
    absl::Status status = service_->manager().ApplyConfig(request->config(), absl::Minutes(10));
    tensorflow::serving::ReloadConfigResponse response;
    response.mutable_status()->set_error_code(static_cast<tensorflow::error::Code>(status.code()));
    response.mutable_status()->set_error_message(ValidUtf8(status.message()));
    if (absl::Status serialized = SerializeRaw(response, response_bytes); !serialized.ok()) {
      status = serialized;
    }
    Reply(service_, reactor, info, 0, status);
  });
  return reactor;
}

}  // namespace inferd::serving
