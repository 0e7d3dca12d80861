// Conversions between the classifier's plain C++ types and the
// tiermesh.v1 protobuf messages (kept apart so the pure logic and its tests
// need no protobuf).
//
//   absl::StatusOr<ClassifyInput> in = InputFromProto(request);  // views into `request`
//   tiermesh::v1::Classification out = ToProto(classification);
#ifndef TIERMESH_SERVICES_CLASSIFIER_PROTO_CONVERT_H_
#define TIERMESH_SERVICES_CLASSIFIER_PROTO_CONVERT_H_

#include "absl/status/statusor.h"

#include "services/classifier/types.h"
#include "tiermesh/v1/classifier.pb.h"
#include "tiermesh/v1/common.pb.h"

namespace tiermesh::classifier {

// The request's messages and tools as views (valid while `request` lives).
// `text` becomes one user message. INVALID_ARGUMENT when both `text` and
// `messages` are set (ambiguous).
[[nodiscard]] absl::StatusOr<ClassifyInput> InputFromProto(
    const tiermesh::v1::ClassifyRequest& request);

// Field-for-field copy. Reason names are made valid UTF-8.
tiermesh::v1::Classification ToProto(const Classification& c);

tiermesh::v1::TaskType TaskToProto(TaskType task);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_PROTO_CONVERT_H_
