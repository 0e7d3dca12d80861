#include "services/common/tracing/propagation.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/test/client_context_test_peer.h"
#include "grpcpp/test/server_context_test_spouse.h"
#include "gtest/gtest.h"

#include "tests/unit/common/tracing/tracing_fakes.h"

namespace tiermesh::tracing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::tiermesh::tracing::testing::CapturingProcessor;
using ::tiermesh::tracing::testing::SequentialIdGenerator;

constexpr char kTraceparent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

SpanContext Context(absl::string_view trace_state = "") {
  SpanContext context = *ParseTraceparent(kTraceparent);
  context.trace_state = std::string(trace_state);
  return context;
}

std::multimap<grpc::string_ref, grpc::string_ref> Metadata(
    const std::vector<std::pair<std::string, std::string>>& entries) {
  std::multimap<grpc::string_ref, grpc::string_ref> out;
  for (const auto& [k, v] : entries) out.emplace(grpc::string_ref(k), grpc::string_ref(v));
  return out;
}

TEST(Grpc, InjectAddsTraceparentAndTracestate) {
  grpc::ClientContext client_context;
  InjectGrpc(Context("congo=t61rcWkgMzE"), &client_context);
  grpc::testing::ClientContextTestPeer peer(&client_context);
  EXPECT_THAT(peer.GetSendInitialMetadata(), ElementsAre(Pair("traceparent", kTraceparent),
                                                         Pair("tracestate", "congo=t61rcWkgMzE")));

  grpc::ClientContext untouched;
  InjectGrpc(SpanContext(), &untouched);
  InjectGrpc(Context(), &untouched);
  EXPECT_THAT(grpc::testing::ClientContextTestPeer(&untouched).GetSendInitialMetadata(),
              ElementsAre(Pair("traceparent", kTraceparent)));
}

TEST(Grpc, ExtractTable) {
  struct Case {
    std::vector<std::pair<std::string, std::string>> metadata;
    bool found;
    std::string trace_state;
  };
  const std::string other = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01";
  const Case cases[] = {
      {{}, false, ""},
      {{{"traceparent", kTraceparent}}, true, ""},
      {{{"traceparent", kTraceparent}, {"tracestate", "a=1"}, {"tracestate", "b=2"}},
       true,
       "a=1,b=2"},
      {{{"traceparent", kTraceparent}, {"tracestate", "broken"}}, true, ""},
      {{{"traceparent", "garbage"}, {"tracestate", "a=1"}}, false, ""},
      {{{"traceparent", kTraceparent}, {"traceparent", other}}, false, ""},  // ambiguous
      {{{"tracestate", "a=1"}}, false, ""},
      {{{"x-other", "1"}, {"traceparent", kTraceparent}}, true, ""},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    const absl::optional<SpanContext> got = ExtractGrpc(Metadata(c.metadata));
    ASSERT_EQ(got.has_value(), c.found) << "case " << i;
    if (got.has_value()) {
      EXPECT_EQ(FormatTraceparent(*got), kTraceparent) << "case " << i;
      EXPECT_EQ(got->trace_state, c.trace_state) << "case " << i;
      EXPECT_TRUE(got->is_remote);
    }
  }
}

TEST(Grpc, ServerAndClientSpansLinkUp) {
  auto processor = std::make_shared<CapturingProcessor>();
  TracerOptions options;
  options.processor = processor;
  options.id_generator = std::make_shared<SequentialIdGenerator>();
  const Tracer tracer(std::move(options));

  grpc::ServerContext server_context;
  grpc::testing::ServerContextTestSpouse spouse(&server_context);
  spouse.AddClientMetadata("traceparent", kTraceparent);
  spouse.AddClientMetadata("tracestate", "congo=t61rcWkgMzE");
  {
    Span server = StartGrpcServerSpan(tracer, server_context, "/tiermesh.v1.RouterService/Chat");
    grpc::ClientContext client_context;
    Span client = StartGrpcClientSpan(tracer, server, "/tiermesh.v1.InferenceService/Generate",
                                      &client_context);
    const auto sent =
        grpc::testing::ClientContextTestPeer(&client_context).GetSendInitialMetadata();
    EXPECT_THAT(sent, ElementsAre(Pair("traceparent", FormatTraceparent(client.context())),
                                  Pair("tracestate", "congo=t61rcWkgMzE")));
  }
  const std::vector<SpanData> spans = processor->Spans();
  ASSERT_EQ(spans.size(), 2u);
  const SpanData& client = spans[0];
  const SpanData& server = spans[1];
  EXPECT_EQ(server.name, "tiermesh.v1.RouterService/Chat");
  EXPECT_EQ(server.kind, SpanKind::kServer);
  EXPECT_EQ(server.context.trace_id.ToHex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(server.parent_span_id.ToHex(), "00f067aa0ba902b7");
  EXPECT_THAT(server.attributes,
              ElementsAre(Pair("rpc.system", AttributeValue("grpc")),
                          Pair("rpc.service", AttributeValue("tiermesh.v1.RouterService")),
                          Pair("rpc.method", AttributeValue("Chat"))));
  EXPECT_EQ(client.name, "tiermesh.v1.InferenceService/Generate");
  EXPECT_EQ(client.kind, SpanKind::kClient);
  EXPECT_EQ(client.parent_span_id, server.context.span_id);
}

TEST(Http, InjectReplacesAndExtractIgnoresCase) {
  http::HttpHeaders headers = {
      {"Content-Type", "application/json"}, {"TraceParent", "00-old"}, {"TRACESTATE", "old=1"}};
  InjectHttp(Context("x=1"), &headers);
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers[0].name, "Content-Type");
  EXPECT_EQ(headers[1].name, "traceparent");
  EXPECT_EQ(headers[1].value, kTraceparent);
  EXPECT_EQ(headers[2].name, "tracestate");
  EXPECT_EQ(headers[2].value, "x=1");

  const http::HttpHeaders incoming = {{"TraceParent", kTraceparent}, {"TraceState", "k=v"}};
  const absl::optional<SpanContext> got = ExtractHttp(incoming);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->trace_state, "k=v");
  EXPECT_FALSE(ExtractHttp(http::HttpHeaders{{"traceparent", "00-bad"}}).has_value());

  // An invalid context removes stale headers and adds none.
  InjectHttp(SpanContext(), &headers);
  ASSERT_EQ(headers.size(), 1u);

  HeaderPairs pairs = {{"traceparent", "stale"}};
  InjectHttp(Context(), &pairs);
  EXPECT_THAT(pairs, ElementsAre(Pair("traceparent", kTraceparent)));
  EXPECT_EQ(FormatTraceparent(*ExtractHttp(pairs)), kTraceparent);
  EXPECT_FALSE(ExtractHttp(HeaderPairs{}).has_value());
}

TEST(Http, ClientSpanInjectsAndDescribesTheRequest) {
  auto processor = std::make_shared<CapturingProcessor>();
  TracerOptions options;
  options.processor = processor;
  const Tracer tracer(std::move(options));
  Span parent = tracer.StartSpan("attempt", SpanKind::kInternal);
  http::HttpRequest request;
  request.method = http::HttpMethod::kPost;
  request.url = "https://user:pw@generativelanguage.googleapis.com:443/v1beta/models?key=AIzaXYZ";
  {
    Span span = StartHttpClientSpan(tracer, parent, &request);
    EXPECT_EQ(http::FindHeader(request.headers, "traceparent"), FormatTraceparent(span.context()));
  }
  const SpanData span = processor->Spans().at(0);
  EXPECT_EQ(span.name, "POST");
  EXPECT_EQ(span.parent_span_id, parent.context().span_id);
  EXPECT_THAT(
      span.attributes,
      ElementsAre(Pair("http.request.method", AttributeValue("POST")),
                  Pair("server.address", AttributeValue("generativelanguage.googleapis.com")),
                  Pair("url.full", AttributeValue(http::RedactUrl(request.url)))));
  for (const auto& [k, v] : span.attributes) {
    const auto* s = std::get_if<std::string>(&v.storage());
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->find("AIza"), std::string::npos);
    EXPECT_EQ(s->find("pw"), std::string::npos);
  }
}

TEST(Propagation, DisabledTracerForwardsTheIncomingContext) {
  const Tracer tracer = Tracer::Noop();
  grpc::ServerContext server_context;
  // The spouse owns the metadata strings: keep it alive.
  grpc::testing::ServerContextTestSpouse spouse(&server_context);
  spouse.AddClientMetadata("traceparent", kTraceparent);
  Span server = StartGrpcServerSpan(tracer, server_context, "/tiermesh.v1.RouterService/Chat");
  grpc::ClientContext client_context;
  Span client = StartGrpcClientSpan(tracer, server, "/x.Y/Z", &client_context);
  EXPECT_THAT(grpc::testing::ClientContextTestPeer(&client_context).GetSendInitialMetadata(),
              ElementsAre(Pair("traceparent", kTraceparent)));

  // And with no incoming context there is nothing to forward.
  grpc::ServerContext bare;
  Span root = StartGrpcServerSpan(tracer, bare, "/a.B/C");
  grpc::ClientContext out;
  Span call = StartGrpcClientSpan(tracer, root, "/x.Y/Z", &out);
  EXPECT_THAT(grpc::testing::ClientContextTestPeer(&out).GetSendInitialMetadata(), IsEmpty());
}

}  // namespace
}  // namespace tiermesh::tracing
