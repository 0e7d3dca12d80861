#include "tests/fakes/fake_provider/fake_provider.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace tiermesh::testing {
namespace {

using Json = nlohmann::json;

constexpr int64_t kCreated = 1'700'000'000;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// One unit of output: a text token, the start of a tool call (its name), or a
// piece of a tool call's arguments.
struct Piece {
  enum class Kind { kText, kCallStart, kCallArgs };
  Kind kind;
  int call = -1;
  std::string text;
};

std::vector<std::string> SplitWords(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    // A token starts at a space that follows a word: "Hello", " there".
    if (i > 0 && text[i] == ' ' && text[i - 1] != ' ' && !cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
    cur.push_back(text[i]);
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::vector<std::string> SplitBytes(const std::string& text, size_t piece) {
  std::vector<std::string> out;
  size_t i = 0;
  piece = std::max<size_t>(piece, 1);
  while (i < text.size()) {
    size_t end = std::min(text.size(), i + piece);
    // Never split a UTF-8 character.
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    out.push_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

std::vector<Piece> MakePieces(const FakeModelScript& script) {
  std::vector<Piece> pieces;
  for (std::string& w : SplitWords(script.reply)) {
    pieces.push_back({Piece::Kind::kText, -1, std::move(w)});
  }
  for (size_t c = 0; c < script.tool_calls.size(); ++c) {
    pieces.push_back({Piece::Kind::kCallStart, static_cast<int>(c), script.tool_calls[c].name});
    for (std::string& a :
         SplitBytes(script.tool_calls[c].arguments_json, script.argument_piece_bytes)) {
      pieces.push_back({Piece::Kind::kCallArgs, static_cast<int>(c), std::move(a)});
    }
  }
  return pieces;
}

const char* GoogleStatusName(int http_status) {
  switch (http_status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 500:
      return "INTERNAL";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return http_status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
  }
}

const char* AnthropicType(int http_status) {
  switch (http_status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
    default:
      return http_status >= 500 ? "api_error" : "invalid_request_error";
  }
}

const char* OpenAiType(int http_status) {
  switch (http_status) {
    case 401:
      return "invalid_request_error";
    case 429:
      return "requests";
    default:
      return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

// The provider's error object for an HTTP status (also used in-stream).
Json ErrorBody(FakeApi api, int status, const FakeModelScript& s) {
  const std::string message =
      s.error_message.empty() ? absl::StrCat("fake provider error ", status) : s.error_message;
  switch (api) {
    case FakeApi::kOpenAi: {
      Json e = {{"message", message},
                {"type", s.error_type.empty() ? OpenAiType(status) : s.error_type},
                {"param", nullptr},
                {"code", nullptr}};
      if (!s.error_code.empty()) {
        e["code"] = s.error_code;
      } else if (status == 429) {
        e["code"] = "rate_limit_exceeded";
      } else if (status == 401) {
        e["code"] = "invalid_api_key";
      }
      return {{"error", e}};
    }
    case FakeApi::kAnthropic:
      return {{"type", "error"},
              {"error",
               {{"type", s.error_type.empty() ? AnthropicType(status) : s.error_type},
                {"message", message}}},
              {"request_id", "req_fake"}};
    case FakeApi::kGemini:
      return {{"error",
               {{"code", status},
                {"message", message},
                {"status", s.error_type.empty() ? GoogleStatusName(status) : s.error_type}}}};
  }
  return Json::object();
}

std::string SseData(const Json& j) { return absl::StrCat("data: ", Dump(j), "\n\n"); }
std::string SseEvent(const std::string& type, const Json& j) {
  return absl::StrCat("event: ", type, "\ndata: ", Dump(j), "\n\n");
}

int64_t MaxTokens(FakeApi api, const Json& body) {
  auto get = [](const Json& obj, const char* key) -> int64_t {
    if (!obj.is_object()) return -1;
    auto it = obj.find(key);
    return it != obj.end() && it->is_number_integer() ? it->get<int64_t>() : -1;
  };
  switch (api) {
    case FakeApi::kOpenAi: {
      int64_t m = get(body, "max_tokens");
      return m >= 0 ? m : get(body, "max_completion_tokens");
    }
    case FakeApi::kAnthropic:
      return get(body, "max_tokens");
    case FakeApi::kGemini: {
      auto it = body.find("generationConfig");
      return it != body.end() ? get(*it, "maxOutputTokens") : -1;
    }
  }
  return -1;
}

// Everything one answer needs, in each API's words.
class Answer {
 public:
  Answer(FakeApi api, std::string model, const FakeModelScript& script, int64_t prompt_tokens,
         std::vector<Piece> pieces, bool truncated, bool include_usage)
      : api_(api),
        model_(std::move(model)),
        script_(script),
        prompt_(prompt_tokens),
        pieces_(std::move(pieces)),
        truncated_(truncated),
        include_usage_(include_usage) {}

  bool has_calls() const {
    return std::any_of(pieces_.begin(), pieces_.end(),
                       [](const Piece& p) { return p.kind == Piece::Kind::kCallStart; });
  }

  std::string FinishReason() const {
    switch (api_) {
      case FakeApi::kOpenAi:
        return truncated_ ? "length" : has_calls() ? "tool_calls" : "stop";
      case FakeApi::kAnthropic:
        return truncated_ ? "max_tokens" : has_calls() ? "tool_use" : "end_turn";
      case FakeApi::kGemini:
        return truncated_ ? "MAX_TOKENS" : "STOP";
    }
    return "";
  }

  std::string Text() const {
    std::string t;
    for (const Piece& p : pieces_) {
      if (p.kind == Piece::Kind::kText) t += p.text;
    }
    return t;
  }

  // (name, arguments so far) per call, in order.
  std::vector<std::pair<std::string, std::string>> Calls() const {
    std::vector<std::pair<std::string, std::string>> calls;
    for (const Piece& p : pieces_) {
      if (p.kind == Piece::Kind::kCallStart) calls.emplace_back(p.text, "");
      if (p.kind == Piece::Kind::kCallArgs) calls[static_cast<size_t>(p.call)].second += p.text;
    }
    return calls;
  }

  static Json ArgsObject(const std::string& text) {
    Json j = Json::parse(text, nullptr, false);
    return j.is_object() ? j : Json::object();
  }

  std::string Unary() const {
    const int64_t n = static_cast<int64_t>(pieces_.size());
    const auto calls = Calls();
    switch (api_) {
      case FakeApi::kOpenAi: {
        Json message = {{"role", "assistant"}};
        const std::string text = Text();
        message["content"] = text.empty() && !calls.empty() ? Json(nullptr) : Json(text);
        if (!calls.empty()) {
          Json tc = Json::array();
          for (size_t c = 0; c < calls.size(); ++c) {
            tc.push_back(
                {{"id", absl::StrCat("call_fake_", c)},
                 {"type", "function"},
                 {"function", {{"name", calls[c].first}, {"arguments", calls[c].second}}}});
          }
          message["tool_calls"] = tc;
        }
        Json out = {
            {"id", "chatcmpl-fake"},
            {"object", "chat.completion"},
            {"created", kCreated},
            {"model", model_},
            {"choices",
             Json::array(
                 {{{"index", 0}, {"message", message}, {"finish_reason", FinishReason()}}})}};
        if (script_.send_usage) out["usage"] = OpenAiUsage(n);
        return Dump(out);
      }
      case FakeApi::kAnthropic: {
        Json content = Json::array();
        const std::string text = Text();
        if (!text.empty()) content.push_back({{"type", "text"}, {"text", text}});
        for (size_t c = 0; c < calls.size(); ++c) {
          content.push_back({{"type", "tool_use"},
                             {"id", absl::StrCat("toolu_fake_", c)},
                             {"name", calls[c].first},
                             {"input", ArgsObject(calls[c].second)}});
        }
        Json out = {{"id", "msg_fake"},        {"type", "message"},
                    {"role", "assistant"},     {"model", model_},
                    {"content", content},      {"stop_reason", FinishReason()},
                    {"stop_sequence", nullptr}};
        if (script_.send_usage) out["usage"] = {{"input_tokens", prompt_}, {"output_tokens", n}};
        return Dump(out);
      }
      case FakeApi::kGemini: {
        Json parts = Json::array();
        const std::string text = Text();
        if (!text.empty()) parts.push_back({{"text", text}});
        for (const auto& call : calls) {
          parts.push_back(
              {{"functionCall", {{"name", call.first}, {"args", ArgsObject(call.second)}}}});
        }
        Json out = {{"candidates", Json::array({{{"content", {{"role", "model"}, {"parts", parts}}},
                                                 {"finishReason", FinishReason()},
                                                 {"index", 0}}})},
                    {"modelVersion", model_}};
        if (script_.send_usage) out["usageMetadata"] = GeminiUsage(n);
        return Dump(out);
      }
    }
    return "";
  }

  // Stream framing: what comes before the first piece, for piece i (given how
  // many pieces were sent before), and after the last.
  std::string Prologue() const {
    switch (api_) {
      case FakeApi::kOpenAi:
        return OpenAiChunk({{"role", "assistant"}, {"content", ""}}, nullptr);
      case FakeApi::kAnthropic: {
        Json usage = {{"input_tokens", prompt_}, {"output_tokens", 0}};
        Json message = {{"id", "msg_fake"},         {"type", "message"}, {"role", "assistant"},
                        {"content", Json::array()}, {"model", model_},   {"stop_reason", nullptr},
                        {"stop_sequence", nullptr}};
        if (script_.send_usage) message["usage"] = usage;
        return SseEvent("message_start", {{"type", "message_start"}, {"message", message}});
      }
      case FakeApi::kGemini:
        return "";
    }
    return "";
  }

  std::string PieceEvent(size_t i) {
    const Piece& p = pieces_[i];
    const int64_t sent = static_cast<int64_t>(i) + 1;
    switch (api_) {
      case FakeApi::kOpenAi:
        if (p.kind == Piece::Kind::kText) return OpenAiChunk({{"content", p.text}}, nullptr);
        if (p.kind == Piece::Kind::kCallStart) {
          return OpenAiChunk(
              {{"tool_calls",
                Json::array({{{"index", p.call},
                              {"id", absl::StrCat("call_fake_", p.call)},
                              {"type", "function"},
                              {"function", {{"name", p.text}, {"arguments", ""}}}}})}},
              nullptr);
        }
        return OpenAiChunk(
            {{"tool_calls",
              Json::array({{{"index", p.call}, {"function", {{"arguments", p.text}}}}})}},
            nullptr);
      case FakeApi::kAnthropic: {
        std::string out;
        const int block = p.kind == Piece::Kind::kText ? 0 : p.call + (has_text_ ? 1 : 0);
        if (p.kind == Piece::Kind::kText && !open_text_) {
          has_text_ = true;
          open_text_ = true;
          out += SseEvent("content_block_start",
                          {{"type", "content_block_start"},
                           {"index", 0},
                           {"content_block", {{"type", "text"}, {"text", ""}}}});
          out += SseEvent("ping", {{"type", "ping"}});
        }
        if (p.kind == Piece::Kind::kCallStart) {
          out += CloseAnthropicBlock();
          open_call_block_ = p.call + (has_text_ ? 1 : 0);
          out += SseEvent("content_block_start", {{"type", "content_block_start"},
                                                  {"index", open_call_block_},
                                                  {"content_block",
                                                   {{"type", "tool_use"},
                                                    {"id", absl::StrCat("toolu_fake_", p.call)},
                                                    {"name", p.text},
                                                    {"input", Json::object()}}}});
          return out;
        }
        Json delta = p.kind == Piece::Kind::kText
                         ? Json{{"type", "text_delta"}, {"text", p.text}}
                         : Json{{"type", "input_json_delta"}, {"partial_json", p.text}};
        out += SseEvent("content_block_delta",
                        {{"type", "content_block_delta"}, {"index", block}, {"delta", delta}});
        return out;
      }
      case FakeApi::kGemini: {
        if (p.kind == Piece::Kind::kCallArgs) return "";  // sent whole with its start
        Json part;
        if (p.kind == Piece::Kind::kText) {
          part = {{"text", p.text}};
        } else {
          part = {{"functionCall",
                   {{"name", p.text},
                    {"args", ArgsObject(Calls()[static_cast<size_t>(p.call)].second)}}}};
        }
        // The usage counts every piece up to the last one this chunk stands for.
        int64_t upto = sent;
        while (upto < static_cast<int64_t>(pieces_.size()) &&
               pieces_[static_cast<size_t>(upto)].kind == Piece::Kind::kCallArgs) {
          ++upto;
        }
        const bool last = upto == static_cast<int64_t>(pieces_.size());
        return SseData(GeminiChunk(Json::array({part}), upto, last));
      }
    }
    return "";
  }

  std::string Epilogue() {
    const int64_t n = static_cast<int64_t>(pieces_.size());
    switch (api_) {
      case FakeApi::kOpenAi: {
        std::string out = OpenAiChunk(Json::object(), FinishReason());
        if (include_usage_ && script_.send_usage) {
          out += SseData({{"id", "chatcmpl-fake"},
                          {"object", "chat.completion.chunk"},
                          {"created", kCreated},
                          {"model", model_},
                          {"choices", Json::array()},
                          {"usage", OpenAiUsage(n)}});
        }
        return out + "data: [DONE]\n\n";
      }
      case FakeApi::kAnthropic: {
        std::string out = CloseAnthropicBlock();
        Json md = {{"type", "message_delta"},
                   {"delta", {{"stop_reason", FinishReason()}, {"stop_sequence", nullptr}}}};
        if (script_.send_usage) md["usage"] = {{"output_tokens", n}};
        out += SseEvent("message_delta", md);
        return out + SseEvent("message_stop", {{"type", "message_stop"}});
      }
      case FakeApi::kGemini:
        // The finish reason rode on the last piece's chunk; an empty answer
        // still needs one chunk carrying it.
        if (pieces_.empty()) {
          return SseData(GeminiChunk(Json::array({{{"text", ""}}}), 0, true));
        }
        return "";
    }
    return "";
  }

  std::string ErrorEvent(int status) const {
    const Json body = ErrorBody(api_, status, script_);
    if (api_ == FakeApi::kAnthropic) return SseEvent("error", body);
    return SseData(body);
  }

 private:
  Json OpenAiUsage(int64_t n) const {
    return {{"prompt_tokens", prompt_}, {"completion_tokens", n}, {"total_tokens", prompt_ + n}};
  }
  Json GeminiUsage(int64_t n) const {
    return {{"promptTokenCount", prompt_},
            {"candidatesTokenCount", n},
            {"totalTokenCount", prompt_ + n}};
  }
  std::string OpenAiChunk(const Json& delta, const Json& finish) const {
    Json chunk = {
        {"id", "chatcmpl-fake"},
        {"object", "chat.completion.chunk"},
        {"created", kCreated},
        {"model", model_},
        {"choices", Json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
    if (include_usage_) chunk["usage"] = nullptr;
    return SseData(chunk);
  }
  Json GeminiChunk(const Json& parts, int64_t sent, bool last) const {
    Json candidate = {{"content", {{"role", "model"}, {"parts", parts}}}, {"index", 0}};
    if (last) candidate["finishReason"] = FinishReason();
    Json chunk = {{"candidates", Json::array({candidate})}, {"modelVersion", model_}};
    if (script_.send_usage) chunk["usageMetadata"] = GeminiUsage(sent);
    return chunk;
  }
  std::string CloseAnthropicBlock() {
    std::string out;
    if (open_text_) {
      out += SseEvent("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
      open_text_ = false;
    }
    if (open_call_block_ >= 0) {
      out += SseEvent("content_block_stop",
                      {{"type", "content_block_stop"}, {"index", open_call_block_}});
      open_call_block_ = -1;
    }
    return out;
  }

  FakeApi api_;
  std::string model_;
  const FakeModelScript& script_;
  int64_t prompt_;
  std::vector<Piece> pieces_;
  bool truncated_;
  bool include_usage_;
  bool has_text_ = false;
  bool open_text_ = false;
  int open_call_block_ = -1;
};

bool BodyBool(const Json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace

const char* FakeApiName(FakeApi api) {
  switch (api) {
    case FakeApi::kOpenAi:
      return "openai";
    case FakeApi::kAnthropic:
      return "anthropic";
    case FakeApi::kGemini:
      return "gemini";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<FakeProvider>> FakeProvider::Start() {
  std::unique_ptr<FakeProvider> fake(new FakeProvider());
  FakeProvider* self = fake.get();
  absl::StatusOr<std::unique_ptr<FakeHttpServer>> server =
      FakeHttpServer::Start([self](const FakeHttpRequest& request, FakeHttpResponder& responder) {
        self->Handle(request, responder);
      });
  if (!server.ok()) return server.status();
  fake->server_ = *std::move(server);
  return fake;
}

FakeProvider::~FakeProvider() {
  if (server_) server_->Stop();
}

std::string FakeProvider::base_url() const { return server_->base_url(); }
std::string FakeProvider::openai_base_url() const { return server_->base_url() + "/v1"; }

void FakeProvider::SetModel(const std::string& model, FakeModelScript script) {
  std::lock_guard<std::mutex> lock(mu_);
  scripts_[model] = std::move(script);
}

void FakeProvider::SetDefault(FakeModelScript script) {
  std::lock_guard<std::mutex> lock(mu_);
  default_script_ = std::move(script);
}

void FakeProvider::SetAcceptedKeys(std::vector<std::string> keys) {
  std::lock_guard<std::mutex> lock(mu_);
  accepted_keys_ = std::move(keys);
}

std::vector<FakeAttempt> FakeProvider::attempts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return attempts_;
}

bool FakeProvider::WaitForAttempts(size_t count, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                           [&] { return attempts_.size() >= count; });
}

int64_t FakeProvider::total_prompt_tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t sum = 0;
  for (const auto& a : attempts_) sum += a.prompt_tokens;
  return sum;
}

int64_t FakeProvider::total_completion_tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t sum = 0;
  for (const auto& a : attempts_) sum += a.completion_tokens;
  return sum;
}

FakeModelScript FakeProvider::ScriptFor(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = scripts_.find(model);
  return it != scripts_.end() ? it->second : default_script_;
}

bool FakeProvider::KeyAccepted(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (key.empty()) return false;
  return accepted_keys_.empty() ||
         std::find(accepted_keys_.begin(), accepted_keys_.end(), key) != accepted_keys_.end();
}

void FakeProvider::Record(FakeAttempt attempt) {
  attempt.ended = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    attempts_.push_back(std::move(attempt));
  }
  changed_.notify_all();
}

void FakeProvider::Handle(const FakeHttpRequest& request, FakeHttpResponder& responder) {
  FakeAttempt attempt;
  attempt.started = absl::Now();
  attempt.path = request.target;
  attempt.request_body = request.body;

  auto refuse = [&](FakeApi api, int status, const std::string& message) {
    FakeModelScript s;
    s.error_message = message;
    attempt.api = api;
    attempt.http_status = status;
    responder.Respond(status, Dump(ErrorBody(api, status, s)),
                      {{"Content-Type", "application/json"}});
    Record(attempt);
  };

  bool include_usage = false;
  if (request.method == "POST" && request.path == "/v1/chat/completions") {
    attempt.api = FakeApi::kOpenAi;
    std::string auth = request.Header("authorization").value_or("");
    attempt.api_key = absl::StartsWith(auth, "Bearer ") ? auth.substr(7) : "";
  } else if (request.method == "POST" && request.path == "/v1/messages") {
    attempt.api = FakeApi::kAnthropic;
    attempt.api_key = request.Header("x-api-key").value_or("");
    if (!request.Header("anthropic-version")) {
      return refuse(FakeApi::kAnthropic, 400, "anthropic-version header is required");
    }
  } else if (request.method == "POST" && absl::StartsWith(request.path, "/v1beta/models/")) {
    attempt.api = FakeApi::kGemini;
    attempt.api_key = request.Header("x-goog-api-key").value_or("");
    if (absl::StrContains(request.query, "key=")) {
      return refuse(FakeApi::kGemini, 400, "the API key must not travel in the URL");
    }
    absl::string_view rest = request.path;
    absl::ConsumePrefix(&rest, "/v1beta/models/");
    const size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) return refuse(FakeApi::kGemini, 404, "no method");
    attempt.model = std::string(rest.substr(0, colon));
    const absl::string_view method = rest.substr(colon + 1);
    if (method == "streamGenerateContent") {
      if (!absl::StrContains(request.query, "alt=sse")) {
        return refuse(FakeApi::kGemini, 400, "only alt=sse streaming is faked");
      }
      attempt.stream = true;
    } else if (method != "generateContent") {
      return refuse(FakeApi::kGemini, 404, "unknown method");
    }
  } else {
    attempt.http_status = 404;
    responder.Respond(404, "not found");
    Record(attempt);
    return;
  }

  const Json body = Json::parse(request.body, nullptr, false);
  if (!body.is_object()) return refuse(attempt.api, 400, "request body is not a JSON object");
  if (attempt.api != FakeApi::kGemini) {
    auto model = body.find("model");
    if (model == body.end() || !model->is_string()) return refuse(attempt.api, 400, "no model");
    attempt.model = model->get<std::string>();
    attempt.stream = BodyBool(body, "stream");
  }
  if (attempt.api == FakeApi::kOpenAi) {
    auto opts = body.find("stream_options");
    include_usage = opts != body.end() && BodyBool(*opts, "include_usage");
  }
  if (!KeyAccepted(attempt.api_key)) {
    return refuse(attempt.api, 401, "invalid api key");
  }

  const FakeModelScript script = ScriptFor(attempt.model);
  // Waits that notice at once when the client hangs up (cancellation tests
  // measure how fast the upstream connection closes).
  auto wait = [&responder](absl::Duration d) {
    if (d <= absl::ZeroDuration()) return true;
    return !responder.WaitForClientClose(d) && !responder.stopping();
  };
  if (!wait(script.latency)) {
    attempt.client_went_away = true;
    Record(attempt);
    return;
  }
  if (script.status != 200) {
    FakeHttpHeaders headers = {{"Content-Type", "application/json"}};
    if (script.retry_after_seconds) {
      headers.emplace_back("Retry-After", absl::StrCat(*script.retry_after_seconds));
    }
    attempt.http_status = script.status;
    responder.Respond(script.status, Dump(ErrorBody(attempt.api, script.status, script)), headers);
    Record(attempt);
    return;
  }

  attempt.prompt_tokens = script.prompt_tokens >= 0
                              ? script.prompt_tokens
                              : static_cast<int64_t>((request.body.size() + 3) / 4);
  std::vector<Piece> pieces = MakePieces(script);
  const int64_t max_tokens = MaxTokens(attempt.api, body);
  bool truncated = false;
  if (max_tokens >= 0 && static_cast<int64_t>(pieces.size()) > max_tokens) {
    pieces.resize(static_cast<size_t>(max_tokens));
    truncated = true;
  }
  const size_t total = pieces.size();
  Answer answer(attempt.api, attempt.model, script, attempt.prompt_tokens, std::move(pieces),
                truncated, include_usage);
  attempt.http_status = 200;

  if (!attempt.stream) {
    attempt.completion_tokens = static_cast<int64_t>(total);
    attempt.completed =
        responder.Respond(200, answer.Unary(), {{"Content-Type", "application/json"}});
    attempt.client_went_away = !attempt.completed;
    Record(attempt);
    return;
  }

  auto gone = [&]() {
    attempt.client_went_away = true;
    Record(attempt);
  };
  if (!responder.StartChunked(
          200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}})) {
    return gone();
  }
  if (!wait(script.time_to_first_token)) return gone();
  if (!responder.Write(answer.Prologue())) return gone();
  const absl::Duration gap = script.tokens_per_second > 0
                                 ? absl::Seconds(1.0 / script.tokens_per_second)
                                 : absl::ZeroDuration();
  for (size_t i = 0; i <= total; ++i) {
    const int sent = static_cast<int>(i);
    attempt.completion_tokens = sent;
    if (sent == script.cut_after_tokens) {
      responder.CloseConnection();
      Record(attempt);
      return;
    }
    if (sent == script.reset_after_tokens) {
      responder.ResetConnection();
      Record(attempt);
      return;
    }
    if (sent == script.stall_after_tokens) {
      responder.Stall();
      attempt.client_went_away = true;
      Record(attempt);
      return;
    }
    if (sent == script.malformed_after_tokens) {
      responder.Write("data: {\"choices\": [{\"delta\": oops\n\n");
      responder.CloseConnection();
      Record(attempt);
      return;
    }
    if (sent == script.error_event_after_tokens) {
      responder.Write(answer.ErrorEvent(script.error_event_status));
      responder.Finish();
      Record(attempt);
      return;
    }
    if (i == total) break;
    if (i > 0 && !wait(gap)) return gone();
    const std::string event = answer.PieceEvent(i);
    if (!event.empty() && !responder.Write(event)) {
      attempt.completion_tokens = sent;
      return gone();
    }
  }
  attempt.completion_tokens = static_cast<int64_t>(total);
  if (!responder.Write(answer.Epilogue()) || !responder.Finish()) return gone();
  attempt.completed = true;
  Record(attempt);
}

}  // namespace tiermesh::testing
