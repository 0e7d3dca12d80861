// Pure conversions between the worker's C++ types and the API messages: llama-server's answer
// to a GenerateResponse, a stream delta to a Delta, a model's snapshot to ModelInfo / ModelLoad /
// ResidentModel.
#ifndef TIERMESH_SERVICES_WORKER_PROTO_CONVERT_H_
#define TIERMESH_SERVICES_WORKER_PROTO_CONVERT_H_

#include "absl/time/time.h"

#include "services/worker/llama_api.h"
#include "services/worker/llama_stream.h"
#include "services/worker/model_manager.h"
#include "tiermesh/v1/inference.pb.h"
#include "tiermesh/v1/model.pb.h"

namespace tiermesh::worker {

tiermesh::v1::ModelState ToModelState(Residency residency);

// Usage from llama-server's usage object, else from its timings (flagged estimated when neither
// was sent: then completion tokens are counted as the content chunks seen).
tiermesh::v1::Usage ToUsage(const absl::optional<LlamaUsage>& usage,
                            const absl::optional<LlamaTimings>& timings, int64_t fallback_chunks);

// The unary answer. `model` is the worker's model name (what the caller asked for); local
// inference costs nothing, so the cost is an explicit zero.
tiermesh::v1::GenerateResponse ToGenerateResponse(const LlamaCompletion& completion,
                                                  const std::string& model, absl::Duration total);

tiermesh::v1::Delta ToDelta(const StreamDelta& delta);

tiermesh::v1::ModelInfo ToModelInfo(const ModelSnapshot& snapshot);
tiermesh::v1::ModelLoad ToModelLoad(const ModelSnapshot& snapshot);
tiermesh::v1::ResidentModel ToResidentModel(const ModelSnapshot& snapshot);

void SetDuration(absl::Duration d, google::protobuf::Duration* out);

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_PROTO_CONVERT_H_
