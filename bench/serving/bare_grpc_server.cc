// bare_grpc_server: the cost of gRPC alone, as a peer for inferd-server in bench/serving.
//
// Registers tensorflow.serving.PredictionService with gRPC's callback API (as inferd does) and
// answers every Predict with a precomputed PredictResponse shaped like inferd's answer for the
// digits model: outputs["probabilities"] DT_FLOAT [1,10] in float_val, model_spec {name,
// version, signature_name}. No model, no request parsing beyond what gRPC does. gRPC's own
// thread defaults are kept. Abseil's Mutex deadlock detection (on in Debian's build; gRPC's locks
// are Abseil Mutexes) is turned off, as inferd-server and inferd-gateway do, so that the peer does
// not pay for a debugging aid the servers it is compared with skip.
//
//   bare_grpc_server [--port=N] [--address=127.0.0.1] [--delay_ms=0]
//
// --delay_ms=D answers each Predict D ms after it arrived, without holding a gRPC thread (a
// grpc::Alarm owned by the call's reactor fires the reply): a slow replica for the gateway's
// benchmarks and tests, however many calls are in flight.
//
// Prints "bare_grpc_server listening on ADDRESS:PORT" on stdout once it serves (--port=0 picks a
// free port), and exits on SIGTERM/SIGINT.
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/flags.h"
#include "tensorflow_serving/apis/prediction_service.grpc.pb.h"

namespace {

// The digits model's answer for a constant 0.5 image (as inferd computes it); only the size and
// shape matter here.
constexpr float kProbabilities[10] = {0.040499803f, 0.027591199f, 4.455679e-05f, 0.0062091253f,
                                      0.84120905f,  0.001644619f, 0.005412907f,  0.00011069288f,
                                      0.03906147f,  0.038216613f};

tensorflow::serving::PredictResponse MakeResponse() {
  tensorflow::serving::PredictResponse r;
  auto* spec = r.mutable_model_spec();
  spec->set_name("digits");
  spec->mutable_version()->set_value(1);
  spec->set_signature_name("serving_default");
  tensorflow::TensorProto& t = (*r.mutable_outputs())["probabilities"];
  t.set_dtype(tensorflow::DT_FLOAT);
  t.mutable_tensor_shape()->add_dim()->set_size(1);
  t.mutable_tensor_shape()->add_dim()->set_size(10);
  for (float p : kProbabilities) t.add_float_val(p);
  return r;
}

// One delayed call: finishes OK when its alarm fires and deletes itself once gRPC is done with
// the call. The alarm's callback runs on one of gRPC's threads and touches nothing after
// Finish(); grpc::Alarm keeps its own state alive until that callback has returned, so OnDone
// may destroy the alarm while the callback is still unwinding.
class DelayedReply final : public grpc::ServerUnaryReactor {
 public:
  explicit DelayedReply(std::chrono::milliseconds delay) {
    alarm_.Set(std::chrono::system_clock::now() + delay,
               [this](bool /*fired*/) { Finish(grpc::Status::OK); });
  }

  void OnDone() override { delete this; }

 private:
  grpc::Alarm alarm_;
};

// Stateless after construction; Predict runs concurrently on gRPC's threads.
class BarePredictionService final : public tensorflow::serving::PredictionService::CallbackService {
 public:
  explicit BarePredictionService(std::chrono::milliseconds delay)
      : response_(MakeResponse()), delay_(delay) {}

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* context,
                                    const tensorflow::serving::PredictRequest* /*request*/,
                                    tensorflow::serving::PredictResponse* response) override {
    response->CopyFrom(response_);
    if (delay_.count() > 0) return new DelayedReply(delay_);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const tensorflow::serving::PredictResponse response_;
  const std::chrono::milliseconds delay_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string address = "127.0.0.1";
  int32_t port = 0;
  int32_t delay_ms = 0;
  inferd::FlagSet flags("bare_grpc_server",
                        "Answers every tensorflow.serving.PredictionService/Predict with a fixed "
                        "response (the cost of gRPC alone, for bench/serving/run).");
  flags.Int32("port", &port, "gRPC port; 0 picks a free port (printed on stdout)");
  flags.String("address", &address, "address to listen on");
  flags.Int32("delay_ms", &delay_ms,
              "answer each Predict this many ms after it arrived (no thread waits meanwhile)");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "bare_grpc_server: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "bare_grpc_server: bad --port %d\n", port);
    return 2;
  }
  if (delay_ms < 0) {
    std::fprintf(stderr, "bare_grpc_server: bad --delay_ms %d\n", delay_ms);
    return 2;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  BarePredictionService service{std::chrono::milliseconds(delay_ms)};
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(address + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &bound_port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // as inferd-server: the port alone
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    std::fprintf(stderr, "bare_grpc_server: cannot listen on %s:%d\n", address.c_str(), port);
    return 1;
  }
  std::printf("bare_grpc_server listening on %s:%d\n", address.c_str(), bound_port);
  std::fflush(stdout);

  int received = 0;
  sigwait(&signals, &received);
  server->Shutdown();
  return 0;
}
