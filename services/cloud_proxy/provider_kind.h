// The three upstream API families the cloud-proxy speaks.
//
//   ASSIGN_OR_RETURN(ProviderKind kind, ParseProviderKind("anthropic"));
//   ProviderKindName(kind);  // "anthropic"
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_PROVIDER_KIND_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_PROVIDER_KIND_H_

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tiermesh::cloud {

enum class ProviderKind {
  // OpenAI Chat Completions and every server that copies it (OpenRouter, Groq,
  // Together, DeepSeek, vLLM, llama-server, ...).
  kOpenAiCompatible,
  // Anthropic Messages API.
  kAnthropic,
  // Google Gemini API (generateContent / streamGenerateContent).
  kGemini,
};

// The config spelling: "openai_compatible", "anthropic", "gemini".
inline absl::string_view ProviderKindName(ProviderKind kind) {
  switch (kind) {
    case ProviderKind::kOpenAiCompatible:
      return "openai_compatible";
    case ProviderKind::kAnthropic:
      return "anthropic";
    case ProviderKind::kGemini:
      return "gemini";
  }
  return "unknown";
}

[[nodiscard]] inline absl::StatusOr<ProviderKind> ParseProviderKind(absl::string_view name) {
  if (name == "openai_compatible") return ProviderKind::kOpenAiCompatible;
  if (name == "anthropic") return ProviderKind::kAnthropic;
  if (name == "gemini") return ProviderKind::kGemini;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown provider type \"", name, "\" (want openai_compatible, anthropic or gemini)"));
}

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_PROVIDER_KIND_H_
