// Error propagation helpers for absl::Status / absl::StatusOr. The only error mechanism in
// inferd's own code: project code never throws.
#ifndef INFERD_COMMON_STATUS_MACROS_H_
#define INFERD_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define INFERD_CONCAT_IMPL(a, b) a##b
#define INFERD_CONCAT(a, b) INFERD_CONCAT_IMPL(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status inferd_status_ = (expr);          \
    if (!inferd_status_.ok()) return inferd_status_; \
  } while (false)

// `lhs` = value of `rexpr` (an absl::StatusOr<T>), or returns its error.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL(INFERD_CONCAT(inferd_statusor_, __LINE__), lhs, rexpr)

#define ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                          \
  if (!statusor.ok()) return statusor.status();     \
  lhs = std::move(statusor).value()

#endif  // INFERD_COMMON_STATUS_MACROS_H_
