#include "services/common/logging/redact.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tiermesh::logging {
namespace {

struct KeyCase {
  const char* key;
  bool sensitive;
};

TEST(IsSensitiveKey, Table) {
  const KeyCase cases[] = {
      {"authorization", true},
      {"Authorization", true},
      {"proxy-authorization", true},
      {"api_key", true},
      {"apiKey", true},
      {"APIKEY", true},
      {"x-api-key", true},
      {"x-goog-api-key", true},
      {"x-tiermesh-provider-key", true},
      {"key", true},
      {"provider.keys", true},
      {"access_token", true},
      {"refreshToken", true},
      {"client_secret", true},
      {"SECRET", true},
      {"password", true},
      {"db_passwd", true},
      {"cookie", true},
      {"set-cookie", true},
      {"credentials", true},
      {"auth", true},
      // Not secrets: "tokens" counts, ordinary words containing "key".
      {"max_tokens", false},
      {"prompt_tokens", false},
      {"completion_tokens", false},
      {"tokens_total", false},
      {"monkey", false},
      {"keyword", false},
      {"author", false},
      {"tier", false},
      {"model", false},
      {"", false},
  };
  for (const KeyCase& c : cases) {
    EXPECT_EQ(IsSensitiveKey(c.key), c.sensitive) << "key: '" << c.key << "'";
  }
}

struct RedactCase {
  const char* in;
  const char* want;
};

TEST(RedactSecrets, Table) {
  const RedactCase cases[] = {
      // Nothing to redact.
      {"", ""},
      {"plain message, 3 tokens", "plain message, 3 tokens"},
      {"max_tokens=512 temperature=0.7", "max_tokens=512 temperature=0.7"},
      {"a basic question about sk-learn", "a basic question about sk-learn"},
      {"risk-free task-1234567890abcdefghij", "risk-free task-1234567890abcdefghij"},
      // Authorization schemes.
      {"Authorization: Bearer abc.def-ghi", "Authorization: Bearer [REDACTED]"},
      {"authorization: bearer XyZ123==", "authorization: bearer [REDACTED]"},
      {"Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [REDACTED]"},
      {"header Bearer tok then more", "header Bearer [REDACTED] then more"},
      // Key shapes keep their prefix.
      {"key sk-proj-abcdefghijklmnopqrstuvwxyz0123 rejected", "key sk-[REDACTED] rejected"},
      {"sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAA", "sk-[REDACTED]"},
      {"(gsk_0123456789abcdef0123)", "(gsk_[REDACTED])"},
      {"AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIza[REDACTED]"},
      {"Incorrect API key provided: sk-or-v1-0123456789abcdef0123456789.",
       "Incorrect API key provided: sk-[REDACTED]."},
      // name=value, query strings.
      {"GET /v1beta/models/gemini:generate?key=AIzaSyXYZ&alt=sse",
       "GET /v1beta/models/gemini:generate?key=[REDACTED]&alt=sse"},
      {"api_key=abc123 model=gpt", "api_key=[REDACTED] model=gpt"},
      {"password = hunter2", "password = [REDACTED]"},
      {"token=", "token="},
      // Headers.
      {"x-api-key: abc123, retry", "x-api-key: [REDACTED], retry"},
      {"X-Tiermesh-Provider-Key: k-123", "X-Tiermesh-Provider-Key: [REDACTED]"},
      // Plain "name: value" prose is left readable.
      {"bad api_key: check the env", "bad api_key: check the env"},
      // JSON bodies.
      {R"({"api_key": "abc\"def", "model": "m"})", R"({"api_key": "[REDACTED]", "model": "m"})"},
      {R"({"error":{"message":"bad","token":"t0k"}})",
       R"({"error":{"message":"bad","token":"[REDACTED]"}})"},
      {R"({"secret":"unterminated)", R"({"secret":"[REDACTED])"},
  };
  for (const RedactCase& c : cases) {
    EXPECT_EQ(RedactSecrets(c.in), c.want) << "input: " << c.in;
  }
}

TEST(RedactSecrets, NeverLeaksTheSecretInLongText) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "chunk Bearer s3cr3t-value ";
  const std::string out = RedactSecrets(text);
  EXPECT_EQ(out.find("s3cr3t"), std::string::npos);
}

}  // namespace
}  // namespace tiermesh::logging
