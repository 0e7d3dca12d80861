#include "services/common/http/sse.h"

#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tiermesh::http {
namespace {

constexpr absl::string_view kBom = "\xEF\xBB\xBF";

// The spec's retry rule: ASCII digits only. Values that do not fit an int64
// are ignored like any other invalid value (never an overflow).
absl::optional<int64_t> ParseRetry(absl::string_view value) {
  if (value.empty()) return absl::nullopt;
  int64_t result = 0;
  for (char c : value) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return absl::nullopt;
    const int digit = c - '0';
    if (result > (std::numeric_limits<int64_t>::max() - digit) / 10) return absl::nullopt;
    result = result * 10 + digit;
  }
  return result;
}

}  // namespace

SseDecoder::SseDecoder(SseDecoderOptions options) : options_(options) {}

absl::Status SseDecoder::Fail(absl::Status status) {
  error_ = status;
  pending_.clear();
  data_.clear();
  return status;
}

absl::Status SseDecoder::Feed(absl::string_view chunk, const EventCallback& on_event) {
  if (!error_.ok()) return error_;
  if (finished_) return absl::FailedPreconditionError("SseDecoder::Feed called after Finish");
  if (bom_checked_) return FeedBody(chunk, on_event);

  // Before the first 3 bytes are known, they wait in pending_: a BOM may
  // arrive split across chunks.
  size_t pos = 0;
  while (pending_.size() < kBom.size() && pos < chunk.size()) {
    pending_.push_back(chunk[pos++]);
    if (!absl::StartsWith(kBom, pending_)) break;
  }
  if (pending_ == kBom) {
    pending_.clear();
    bom_checked_ = true;
  } else if (!absl::StartsWith(kBom, pending_)) {
    // Not a BOM: the held bytes are ordinary stream bytes.
    bom_checked_ = true;
    std::string head = std::move(pending_);
    pending_.clear();
    absl::Status status = FeedBody(head, on_event);
    if (!status.ok()) return status;
  } else {
    return absl::OkStatus();  // still a BOM prefix, and the chunk is used up
  }
  return FeedBody(chunk.substr(pos), on_event);
}

absl::Status SseDecoder::FeedBody(absl::string_view bytes, const EventCallback& on_event) {
  size_t i = 0;
  if (skip_lf_ && !bytes.empty()) {
    skip_lf_ = false;
    if (bytes[0] == '\n') i = 1;
  }
  while (i < bytes.size()) {
    const size_t end = bytes.find_first_of("\r\n", i);
    const absl::string_view piece =
        bytes.substr(i, end == absl::string_view::npos ? absl::string_view::npos : end - i);
    // Check before buffering, so that a line without end never grows past the
    // limit and the error comes at the same byte whatever the chunking.
    if (pending_.size() + piece.size() > options_.max_line_bytes) {
      return Fail(absl::ResourceExhaustedError(
          absl::StrCat("SSE line exceeds max_line_bytes (", options_.max_line_bytes, " bytes)")));
    }
    if (end == absl::string_view::npos) {
      pending_.append(piece.data(), piece.size());
      return absl::OkStatus();
    }
    absl::Status status;
    if (pending_.empty()) {
      status = ProcessLine(piece, on_event);
    } else {
      pending_.append(piece.data(), piece.size());
      status = ProcessLine(pending_, on_event);
      pending_.clear();
    }
    if (!status.ok()) return Fail(status);
    i = end + 1;
    if (bytes[end] == '\r') {
      if (i < bytes.size()) {
        if (bytes[i] == '\n') ++i;
      } else {
        skip_lf_ = true;  // the LF of a CRLF may start the next chunk
      }
    }
  }
  return absl::OkStatus();
}

absl::Status SseDecoder::ProcessLine(absl::string_view line, const EventCallback& on_event) {
  if (line.empty()) {
    Dispatch(on_event);
    return absl::OkStatus();
  }
  if (line[0] == ':') {
    ++comment_count_;
    return absl::OkStatus();
  }
  in_event_ = true;
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return ProcessField(line, "");
  absl::string_view value = line.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  return ProcessField(line.substr(0, colon), value);
}

absl::Status SseDecoder::ProcessField(absl::string_view field, absl::string_view value) {
  if (field == "data") {
    const size_t join = has_data_ ? 1 : 0;
    if (data_.size() + join + value.size() + event_type_.size() > options_.max_event_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("SSE event exceeds max_event_bytes (", options_.max_event_bytes, " bytes)"));
    }
    if (has_data_) data_.push_back('\n');
    data_.append(value.data(), value.size());
    has_data_ = true;
  } else if (field == "event") {
    if (data_.size() + value.size() > options_.max_event_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("SSE event exceeds max_event_bytes (", options_.max_event_bytes, " bytes)"));
    }
    event_type_.assign(value.data(), value.size());
  } else if (field == "id") {
    if (value.find('\0') == absl::string_view::npos) id_buffer_.assign(value.data(), value.size());
  } else if (field == "retry") {
    absl::optional<int64_t> retry = ParseRetry(value);
    if (retry.has_value()) {
      event_retry_ms_ = retry;
      last_retry_ms_ = retry;
    }
  }
  // Any other field is ignored (spec).
  return absl::OkStatus();
}

void SseDecoder::Dispatch(const EventCallback& on_event) {
  last_event_id_ = id_buffer_;
  in_event_ = false;
  if (!has_data_) {
    event_type_.clear();
    event_retry_ms_.reset();
    return;
  }
  SseEvent event;
  event.event = event_type_.empty() ? "message" : std::move(event_type_);
  event.data = std::move(data_);
  event.id = id_buffer_;
  event.retry_ms = event_retry_ms_;
  data_.clear();
  event_type_.clear();
  event_retry_ms_.reset();
  has_data_ = false;
  ++event_count_;
  if (on_event) on_event(std::move(event));
}

absl::Status SseDecoder::Finish() {
  if (!error_.ok()) return error_;
  if (finished_) return finish_status_;
  finished_ = true;
  if (!pending_.empty()) {
    finish_status_ = absl::DataLossError(absl::StrCat(
        "SSE stream ended inside a line (", pending_.size(), " bytes without a line end)"));
  } else if (in_event_) {
    finish_status_ =
        absl::DataLossError("SSE stream ended inside an event (no blank line after its fields)");
  }
  pending_.clear();
  data_.clear();
  return finish_status_;
}

absl::StatusOr<std::vector<SseEvent>> DecodeSseStream(absl::string_view body,
                                                      SseDecoderOptions options) {
  std::vector<SseEvent> events;
  SseDecoder decoder(options);
  absl::Status status =
      decoder.Feed(body, [&events](SseEvent&& event) { events.push_back(std::move(event)); });
  if (!status.ok()) return status;
  status = decoder.Finish();
  if (!status.ok()) return status;
  return events;
}

}  // namespace tiermesh::http
