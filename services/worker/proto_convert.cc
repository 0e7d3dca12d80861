#include "services/worker/proto_convert.h"

#include <algorithm>

namespace tiermesh::worker {

using tiermesh::v1::ModelState;

ModelState ToModelState(Residency residency) {
  switch (residency) {
    case Residency::kUnloaded:
      return tiermesh::v1::MODEL_STATE_UNLOADED;
    case Residency::kLoading:
      return tiermesh::v1::MODEL_STATE_LOADING;
    case Residency::kReady:
      return tiermesh::v1::MODEL_STATE_READY;
    case Residency::kUnloading:
      return tiermesh::v1::MODEL_STATE_UNLOADING;
    case Residency::kFailed:
      return tiermesh::v1::MODEL_STATE_FAILED;
    case Residency::kRestarting:
    case Residency::kUnavailable:
      return tiermesh::v1::MODEL_STATE_UNAVAILABLE;
  }
  return tiermesh::v1::MODEL_STATE_UNSPECIFIED;
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(std::max(d, absl::ZeroDuration()));
  out->set_seconds(ns / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
}

tiermesh::v1::Usage ToUsage(const absl::optional<LlamaUsage>& usage,
                            const absl::optional<LlamaTimings>& timings, int64_t fallback_chunks) {
  tiermesh::v1::Usage out;
  if (usage.has_value()) {
    out.set_prompt_tokens(usage->prompt_tokens);
    out.set_completion_tokens(usage->completion_tokens);
    out.set_cached_prompt_tokens(usage->cached_prompt_tokens);
  } else if (timings.has_value()) {
    out.set_prompt_tokens(timings->prompt_n + timings->cache_n);
    out.set_completion_tokens(timings->predicted_n);
    out.set_cached_prompt_tokens(timings->cache_n);
  } else {
    out.set_completion_tokens(fallback_chunks);
    out.set_estimated(true);
  }
  out.set_total_tokens(out.prompt_tokens() + out.completion_tokens());
  return out;
}

tiermesh::v1::GenerateResponse ToGenerateResponse(const LlamaCompletion& completion,
                                                  const std::string& model, absl::Duration total) {
  tiermesh::v1::GenerateResponse out;
  tiermesh::v1::ChatMessage* message = out.mutable_message();
  message->set_role(tiermesh::v1::ROLE_ASSISTANT);
  message->set_content(completion.content);
  for (const LlamaToolCall& call : completion.tool_calls) {
    tiermesh::v1::ToolCall* t = message->add_tool_calls();
    t->set_id(call.id);
    t->set_name(call.name);
    t->set_arguments_json(call.arguments_json);
  }
  out.set_finish_reason(completion.finish_reason);
  *out.mutable_usage() = ToUsage(completion.usage, completion.timings, 0);
  out.mutable_cost()->set_nano_usd(0);
  out.mutable_cost()->set_usd(0);
  out.set_model(model);
  tiermesh::v1::Timings* timings = out.mutable_timings();
  SetDuration(total, timings->mutable_total());
  SetDuration(total, timings->mutable_time_to_first_token());
  if (completion.timings.has_value()) {
    timings->set_tokens_per_second(completion.timings->predicted_per_second);
  }
  return out;
}

tiermesh::v1::Delta ToDelta(const StreamDelta& delta) {
  tiermesh::v1::Delta out;
  out.set_content(delta.content);
  for (const LlamaToolCallDelta& call : delta.tool_calls) {
    tiermesh::v1::ToolCallDelta* t = out.add_tool_calls();
    t->set_index(call.index);
    t->set_id(call.id);
    t->set_name(call.name);
    t->set_arguments_json_delta(call.arguments_delta);
  }
  return out;
}

tiermesh::v1::ModelInfo ToModelInfo(const ModelSnapshot& snapshot) {
  tiermesh::v1::ModelInfo info;
  info.set_name(snapshot.name);
  info.set_provider(snapshot.managed ? "llama-server (managed)" : "llama-server (external)");
  info.set_state(ToModelState(snapshot.residency));
  info.set_context_window(snapshot.context_window);
  info.set_supports_tools(snapshot.supports_tools);
  info.set_supports_streaming(true);
  info.mutable_price()->Clear();  // local: free
  if (snapshot.residency != Residency::kReady) info.set_unavailable_reason(snapshot.error);
  return info;
}

tiermesh::v1::ModelLoad ToModelLoad(const ModelSnapshot& snapshot) {
  tiermesh::v1::ModelLoad load;
  load.set_model(snapshot.name);
  load.set_state(ToModelState(snapshot.residency));
  const bool ready = snapshot.residency == Residency::kReady;
  // The worker's own count of running requests is exact; llama-server's is a scrape behind.
  load.set_slots_busy(ready ? std::max(snapshot.running, snapshot.load.slots_busy) : 0);
  load.set_slots_total(ready ? std::max(snapshot.capacity, snapshot.load.slots_total) : 0);
  load.set_deferred_requests(ready ? snapshot.load.deferred_requests : 0);
  load.set_queue_depth(snapshot.queued);
  load.set_kv_cache_usage_ratio(ready ? snapshot.load.kv_cache_usage_ratio : 0);
  // Accepting: a request would run or queue now rather than be refused. Unloaded managed models
  // accept too (they load on demand).
  const bool saturated = ready && snapshot.capacity > 0 && snapshot.running >= snapshot.capacity &&
                         snapshot.queued >= snapshot.max_queue;
  load.set_accepting(!saturated && (ready || (snapshot.managed &&
                                              snapshot.residency != Residency::kRestarting)));
  return load;
}

tiermesh::v1::ResidentModel ToResidentModel(const ModelSnapshot& snapshot) {
  tiermesh::v1::ResidentModel out;
  *out.mutable_info() = ToModelInfo(snapshot);
  out.set_kind(snapshot.managed ? "managed" : "external");
  if (snapshot.last_used != absl::InfinitePast()) {
    const int64_t ns = absl::ToUnixNanos(snapshot.last_used);
    out.mutable_last_used()->set_seconds(ns / 1'000'000'000);
    out.mutable_last_used()->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  }
  out.set_restarts(snapshot.restarts);
  out.set_in_flight(snapshot.running + snapshot.queued);
  return out;
}

}  // namespace tiermesh::worker
