// tiermesh-cli: a small gRPC client for operators and scripts.
//
//   tiermesh-cli health   --address 127.0.0.1:50051 [--service NAME] [--wait 60s]
//   tiermesh-cli classify --address 127.0.0.1:50051 --text "What's the weather in Oslo?"
//   tiermesh-cli generate --address 127.0.0.1:50052 --model tiny --text "hi" [--stream]
//   tiermesh-cli explain  --address 127.0.0.1:50050 --text "Prove that ..." [--api_key KEY]
//   tiermesh-cli chat     --address 127.0.0.1:50050 --text "hi" [--api_key KEY] [--stream]
//   tiermesh-cli chat     --address 127.0.0.1:50050 --escalate_from req-... [--api_key KEY]
//
// Prints responses as JSON (proto3 JSON mapping) on stdout. Exit status 0 on
// success; 1 with one "tiermesh-cli: error: ..." line otherwise. Every call has
// a deadline (--timeout).
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

#include "tiermesh/v1/classifier.grpc.pb.h"
#include "tiermesh/v1/inference.grpc.pb.h"
#include "tiermesh/v1/router.grpc.pb.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051", "host:port of the service");
ABSL_FLAG(std::string, service, "", "health: the service name to check (\"\" = whole server)");
ABSL_FLAG(absl::Duration, wait, absl::ZeroDuration(),
          "health: keep polling until SERVING for up to this long");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of each call");
ABSL_FLAG(std::string, text, "", "classify/generate: the user prompt");
ABSL_FLAG(std::string, model, "", "generate: the model name");
ABSL_FLAG(int, max_tokens, 64, "generate: max tokens");
ABSL_FLAG(bool, stream, false, "generate/chat: stream the answer");
ABSL_FLAG(std::string, api_key, "", "explain/chat: the caller's tiermesh API key (authorization)");
ABSL_FLAG(std::string, escalate_from, "",
          "explain/chat: re-run this earlier request id at the next tier up (--text optional)");

namespace {

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "tiermesh-cli: error: %s\n", message.c_str());
  std::exit(1);
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) Fail(absl::StrCat("cannot print response: ", status.ToString()));
  return out;
}

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
}

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat("code ", status.error_code(), ": ", status.error_message());
}

int Health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  const absl::Time give_up = absl::Now() + absl::GetFlag(FLAGS_wait);
  std::string last;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(absl::GetFlag(FLAGS_service));
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      std::cout << "SERVING\n";
      return 0;
    }
    last = status.ok()
               ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
               : StatusText(status);
    if (absl::Now() >= give_up) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  Fail(absl::StrCat(absl::GetFlag(FLAGS_address), " is not serving: ", last));
}

int Classify(const std::shared_ptr<grpc::Channel>& channel) {
  if (absl::GetFlag(FLAGS_text).empty()) Fail("classify needs --text");
  auto stub = tiermesh::v1::ClassifierService::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context);
  tiermesh::v1::ClassifyRequest request;
  request.set_text(absl::GetFlag(FLAGS_text));
  tiermesh::v1::ClassifyResponse response;
  grpc::Status status = stub->Classify(&context, request, &response);
  if (!status.ok()) Fail(StatusText(status));
  std::cout << ToJson(response) << "\n";
  return 0;
}

int Generate(const std::shared_ptr<grpc::Channel>& channel) {
  if (absl::GetFlag(FLAGS_text).empty()) Fail("generate needs --text");
  if (absl::GetFlag(FLAGS_model).empty()) Fail("generate needs --model");
  auto stub = tiermesh::v1::InferenceService::NewStub(channel);
  tiermesh::v1::GenerateRequest request;
  request.set_model(absl::GetFlag(FLAGS_model));
  auto* message = request.add_messages();
  message->set_role(tiermesh::v1::ROLE_USER);
  message->set_content(absl::GetFlag(FLAGS_text));
  request.mutable_params()->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  grpc::ClientContext context;
  SetDeadline(&context);
  if (!absl::GetFlag(FLAGS_stream)) {
    tiermesh::v1::GenerateResponse response;
    grpc::Status status = stub->Generate(&context, request, &response);
    if (!status.ok()) Fail(StatusText(status));
    std::cout << ToJson(response) << "\n";
    return 0;
  }
  tiermesh::v1::GenerateStreamRequest stream_request;
  *stream_request.mutable_request() = request;
  auto reader = stub->GenerateStream(&context, stream_request);
  tiermesh::v1::GenerateStreamResponse chunk;
  while (reader->Read(&chunk)) std::cout << ToJson(chunk) << "\n";
  grpc::Status status = reader->Finish();
  if (!status.ok()) Fail(StatusText(status));
  return 0;
}

tiermesh::v1::ChatRequest MakeChatRequest() {
  tiermesh::v1::ChatRequest request;
  request.set_escalate_from(absl::GetFlag(FLAGS_escalate_from));
  request.mutable_params()->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  // An escalation without text re-runs the earlier request's messages.
  if (absl::GetFlag(FLAGS_text).empty()) {
    if (!request.escalate_from().empty()) return request;
    Fail("needs --text (or --escalate_from)");
  }
  auto* message = request.add_messages();
  message->set_role(tiermesh::v1::ROLE_USER);
  message->set_content(absl::GetFlag(FLAGS_text));
  return request;
}

void SetRouterMetadata(grpc::ClientContext* context) {
  SetDeadline(context);
  if (!absl::GetFlag(FLAGS_api_key).empty()) {
    context->AddMetadata("authorization", "Bearer " + absl::GetFlag(FLAGS_api_key));
  }
}

int Explain(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = tiermesh::v1::RouterService::NewStub(channel);
  tiermesh::v1::ExplainRequest request;
  *request.mutable_request() = MakeChatRequest();
  grpc::ClientContext context;
  SetRouterMetadata(&context);
  tiermesh::v1::ExplainResponse response;
  grpc::Status status = stub->Explain(&context, request, &response);
  if (!status.ok()) Fail(StatusText(status));
  std::cout << ToJson(response) << "\n";
  return 0;
}

int Chat(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = tiermesh::v1::RouterService::NewStub(channel);
  grpc::ClientContext context;
  SetRouterMetadata(&context);
  if (!absl::GetFlag(FLAGS_stream)) {
    tiermesh::v1::ChatResponse response;
    grpc::Status status = stub->Chat(&context, MakeChatRequest(), &response);
    if (!status.ok()) Fail(StatusText(status));
    std::cout << ToJson(response) << "\n";
    return 0;
  }
  tiermesh::v1::ChatStreamRequest request;
  *request.mutable_request() = MakeChatRequest();
  auto reader = stub->ChatStream(&context, request);
  tiermesh::v1::ChatStreamResponse chunk;
  while (reader->Read(&chunk)) std::cout << ToJson(chunk) << "\n";
  grpc::Status status = reader->Finish();
  if (!status.ok()) Fail(StatusText(status));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tiermesh-cli health|classify|generate|explain|chat --address HOST:PORT [flags]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) Fail("expected one command: health, classify, generate, explain or chat");
  const std::string command = args[1];
  auto channel =
      grpc::CreateChannel(absl::GetFlag(FLAGS_address), grpc::InsecureChannelCredentials());
  if (command == "health") return Health(channel);
  if (command == "classify") return Classify(channel);
  if (command == "generate") return Generate(channel);
  if (command == "explain") return Explain(channel);
  if (command == "chat") return Chat(channel);
  Fail(absl::StrCat("unknown command '", command, "' (health, classify, generate, explain, chat)"));
}
