// grpc.health.v1.Health on gRPC's callback API, backed by a HealthState: Check, and Watch
// streams (the status now and after every change; NOT_SERVING is the last message when the
// process drains). Service names the `known` predicate rejects get NOT_FOUND from Check and
// SERVICE_UNKNOWN from Watch. Shared by inferd-server and inferd-gateway.
#ifndef INFERD_COMMON_GRPC_HEALTH_H_
#define INFERD_COMMON_GRPC_HEALTH_H_

#include <functional>
#include <string>

#include "common/health.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace inferd {

// The service names a TF Serving endpoint answers health checks for: "" (the whole server),
// the fully qualified service names, and TF Serving's short "PredictionService" /
// "ModelService".
bool IsTfServingHealthService(const std::string& name);

class HealthServiceImpl final : public grpc::health::v1::Health::CallbackService {
 public:
  // `health` and `known` must outlive the service.
  HealthServiceImpl(HealthState* health, std::function<bool(const std::string&)> known)
      : health_(health), known_(std::move(known)) {}

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  HealthState* const health_;
  const std::function<bool(const std::string&)> known_;
};

}  // namespace inferd

#endif  // INFERD_COMMON_GRPC_HEALTH_H_
