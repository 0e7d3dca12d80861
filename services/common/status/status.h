// Status helpers shared by every service: early-return macros and the one
// mapping between absl::Status and grpc::Status.
//
//   absl::StatusOr<Config> Load(...) {
//     TIERMESH_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     TIERMESH_RETURN_IF_ERROR(Validate(text));
//     ...
//   }
//   return tiermesh::ToGrpcStatus(status);   // in a gRPC handler
#ifndef TIERMESH_SERVICES_COMMON_STATUS_STATUS_H_
#define TIERMESH_SERVICES_COMMON_STATUS_STATUS_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace tiermesh {

// Payload key under which an error carries a short machine-readable reason
// ("context_length_exceeded", "content_policy", ...). It travels over gRPC in
// the "x-tiermesh-error-reason" trailing metadata entry.
inline constexpr absl::string_view kErrorReasonPayload = "tiermesh.reason";
inline constexpr absl::string_view kErrorReasonMetadata = "x-tiermesh-error-reason";
inline constexpr absl::string_view kRetryAfterMetadata = "retry-after-ms";

// Returns `status` with a machine-readable reason attached.
[[nodiscard]] absl::Status WithReason(absl::Status status, absl::string_view reason);
// The reason attached by WithReason, or "" when none.
[[nodiscard]] std::string ErrorReason(const absl::Status& status);

// absl and gRPC share the canonical code space; these convert without loss of
// code or message.
[[nodiscard]] grpc::Status ToGrpcStatus(const absl::Status& status);
[[nodiscard]] absl::Status FromGrpcStatus(const grpc::Status& status);

// What a handler returns for `status`: ToGrpcStatus, with the error's reason (WithReason) added
// to the call's trailing metadata (kErrorReasonMetadata), where clients and the router read it.
[[nodiscard]] grpc::Status ReplyStatus(grpc::ServerContextBase* context,
                                       const absl::Status& status);

// Upper-case code name as used in metrics and decisions: "OK", "UNAVAILABLE".
[[nodiscard]] absl::string_view CodeName(absl::StatusCode code);
[[nodiscard]] absl::string_view CodeName(grpc::StatusCode code);

}  // namespace tiermesh

#define TIERMESH_STATUS_CONCAT_INNER_(a, b) a##b
#define TIERMESH_STATUS_CONCAT_(a, b) TIERMESH_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` (an absl::Status) is not OK.
#define TIERMESH_RETURN_IF_ERROR(expr)                  \
  do {                                                  \
    ::absl::Status tiermesh_status_ = (expr);           \
    if (!tiermesh_status_.ok()) return tiermesh_status_; \
  } while (0)

// `lhs = value of expr` (an absl::StatusOr<T>), or returns its error.
#define TIERMESH_ASSIGN_OR_RETURN(lhs, expr) \
  TIERMESH_ASSIGN_OR_RETURN_IMPL_(           \
      TIERMESH_STATUS_CONCAT_(tiermesh_statusor_, __LINE__), lhs, expr)
#define TIERMESH_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                                    \
  if (!var.ok()) return std::move(var).status();        \
  lhs = std::move(var).value()

#endif  // TIERMESH_SERVICES_COMMON_STATUS_STATUS_H_
