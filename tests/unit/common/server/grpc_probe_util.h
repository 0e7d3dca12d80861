// Test helpers that talk to the standard services every tiermesh server
// carries, without their generated code (Debian ships no health or
// reflection stubs): requests are encoded by hand and sent through
// grpc::GenericStub. The messages involved are tiny:
//   grpc.health.v1.HealthCheckRequest  { string service = 1; }
//   grpc.health.v1.HealthCheckResponse { ServingStatus status = 1; }
//   grpc.reflection.v1alpha.ServerReflectionRequest { string list_services = 7; ... }
//
//   absl::StatusOr<HealthStatus> h = CheckHealth(channel, "tiermesh.v1.ClassifierService");
#ifndef TIERMESH_TESTS_UNIT_COMMON_SERVER_GRPC_PROBE_UTIL_H_
#define TIERMESH_TESTS_UNIT_COMMON_SERVER_GRPC_PROBE_UTIL_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

#include "services/common/status/status.h"

namespace tiermesh::testing {

enum class HealthStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

inline void AppendVarint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// A length-delimited field (wire type 2).
inline std::string StringField(int field, const std::string& value) {
  std::string out;
  AppendVarint(&out, (static_cast<uint64_t>(field) << 3) | 2);
  AppendVarint(&out, value.size());
  out += value;
  return out;
}

inline grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

inline std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

// One unary call with raw bytes; blocks until it completes.
inline absl::StatusOr<std::string> GenericUnary(const std::shared_ptr<grpc::Channel>& channel,
                                                const std::string& method,
                                                const std::string& request_bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request = ToByteBuffer(request_bytes);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  if (!status.ok()) return FromGrpcStatus(status);
  return FromByteBuffer(response);
}

// grpc.health.v1.Health/Check for `service` ("" is the whole server).
inline absl::StatusOr<HealthStatus> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                                const std::string& service) {
  const std::string request = service.empty() ? "" : StringField(1, service);
  absl::StatusOr<std::string> response =
      GenericUnary(channel, "/grpc.health.v1.Health/Check", request);
  if (!response.ok()) return response.status();
  if (response->empty()) return HealthStatus::kUnknown;  // proto3 default
  if (response->size() != 2 || (*response)[0] != 0x08) {
    return absl::DataLossError("unexpected HealthCheckResponse bytes");
  }
  return static_cast<HealthStatus>((*response)[1]);
}

// CheckHealth's answer, or nullopt when the call failed (for EXPECT_EQ).
inline std::optional<HealthStatus> HealthOf(const std::shared_ptr<grpc::Channel>& channel,
                                            const std::string& service) {
  absl::StatusOr<HealthStatus> health = CheckHealth(channel, service);
  if (!health.ok()) return std::nullopt;
  return *health;
}

// A grpc.health.v1.Health/Watch stream, read one update at a time.
class HealthWatcher {
 public:
  HealthWatcher(const std::shared_ptr<grpc::Channel>& channel, const std::string& service)
      : stub_(channel) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    call_ = stub_.PrepareCall(&context_, "/grpc.health.v1.Health/Watch", &cq_);
    call_->StartCall(&tag_);
    ok_ = Step();
    if (ok_) {
      call_->Write(ToByteBuffer(service.empty() ? "" : StringField(1, service)), &tag_);
      ok_ = Step();
    }
    if (ok_) {
      call_->WritesDone(&tag_);
      ok_ = Step();
    }
  }
  ~HealthWatcher() {
    if (!finished_) {
      context_.TryCancel();
      Finish();
    }
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  // The next status sent, or nullopt once the stream has ended.
  std::optional<HealthStatus> Next() {
    if (!ok_) return std::nullopt;
    grpc::ByteBuffer response;
    call_->Read(&response, &tag_);
    ok_ = Step();
    if (!ok_) return std::nullopt;
    const std::string bytes = FromByteBuffer(response);
    if (bytes.empty()) return HealthStatus::kUnknown;
    if (bytes.size() != 2 || bytes[0] != 0x08) return std::nullopt;
    return static_cast<HealthStatus>(bytes[1]);
  }

  grpc::Status Finish() {
    finished_ = true;
    grpc::Status status;
    call_->Finish(&status, &tag_);
    Step();
    return status;
  }

 private:
  bool Step() {
    void* tag = nullptr;
    bool ok = false;
    return cq_.Next(&tag, &ok) && ok;
  }

  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  int tag_ = 0;
  bool ok_ = false;
  bool finished_ = false;
};

// The raw ServerReflectionResponse to list_services (its service names can
// be found in it as plain substrings).
inline absl::StatusOr<std::string> ListServicesByReflection(
    const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  // The steps run one at a time, so each waits for its own completion.
  auto step = [&cq]() {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok;
  };
  int tag = 0;
  call->StartCall(&tag);
  bool ok = step();
  grpc::ByteBuffer response;
  if (ok) {
    call->Write(ToByteBuffer(StringField(7, "")), &tag);
    ok = step();
  }
  if (ok) {
    call->WritesDone(&tag);
    ok = step();
  }
  if (ok) {
    call->Read(&response, &tag);
    ok = step();
  }
  grpc::Status status;
  call->Finish(&status, &tag);
  step();
  cq.Shutdown();
  void* ignored_tag = nullptr;
  bool ignored_ok = false;
  while (cq.Next(&ignored_tag, &ignored_ok)) {
  }
  if (!status.ok()) return FromGrpcStatus(status);
  if (!ok) return absl::UnavailableError("reflection stream failed");
  return FromByteBuffer(response);
}

}  // namespace tiermesh::testing

#endif  // TIERMESH_TESTS_UNIT_COMMON_SERVER_GRPC_PROBE_UTIL_H_
